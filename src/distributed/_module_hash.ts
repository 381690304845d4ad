/**
 * The content hash of a task's module, the same on the client and on a node, so that a node whose
 * copy of the file differs refuses the task instead of running other code.
 *
 * Rules this file keeps:
 * - A file is read and hashed again only when its size or modification time changed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";

const cache = new Map<string, { size: number; mtimeMs: number; hash: string }>();

/**
 * The SHA-256 of a file's bytes, in hex.
 *
 * @throws {Error} When the file cannot be read (its `code` says why: `ENOENT`, `EACCES`).
 */
export function moduleHash(path: string): string {
  const info = statSync(path);
  const cached = cache.get(path);
  if (cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs) return cached.hash;
  const hash = createHash("sha256").update(readFileSync(path)).digest("hex");
  cache.set(path, { size: info.size, mtimeMs: info.mtimeMs, hash });
  return hash;
}
