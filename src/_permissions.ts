/**
 * Checking the `permissions` and `maxHeapMb` options, which both runtimes share; turning them into
 * command-line flags is the platform seam's job.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ChildPermissions, PermissionsOption } from "./permissions.ts";
import { describeValue } from "./_checks.ts";

/** Every permission kind, in Deno's order. */
export const PERMISSION_NAMES = [
  "read",
  "write",
  "net",
  "env",
  "run",
  "ffi",
  "sys",
  "import",
] as const satisfies ReadonlyArray<keyof ChildPermissions>;

/** How a child process is started, beyond its start method. */
export interface ChildCommandOptions {
  permissions?: PermissionsOption;
  maxHeapMb?: number;
}

/**
 * Checks the shape of a `permissions` option; whether the parent holds what it asks for is
 * checked when the child starts.
 *
 * @throws {TypeError} When the value is not `"inherit"`, `"none"` or an object of grants.
 */
export function checkPermissions(value: unknown, what: string): PermissionsOption | undefined {
  if (value === undefined || value === "inherit" || value === "none") return value;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${what} 'permissions' must be "inherit", "none" or an object of grants: received ${
        describeValue(value)
      }`,
    );
  }
  for (const [name, grant] of Object.entries(value)) {
    if (!(PERMISSION_NAMES as readonly string[]).includes(name)) {
      throw new TypeError(
        `${what} 'permissions' has an unknown kind '${name}': expected one of ${
          PERMISSION_NAMES.map((n) => `'${n}'`).join(", ")
        }`,
      );
    }
    const valid = typeof grant === "boolean" ||
      (Array.isArray(grant) && grant.every((item) => typeof item === "string"));
    if (!valid) {
      throw new TypeError(
        `${what} 'permissions.${name}' must be a boolean or an array of strings: received ${
          describeValue(grant)
        }`,
      );
    }
  }
  return value as ChildPermissions;
}

const projectMarkers = ["deno.json", "deno.jsonc", "package.json"];

/**
 * The directory that a child must be able to read to import the module at `url`: the root of its
 * project (the nearest directory above it with a `deno.json` or `package.json`), where its local
 * imports live; the module's own directory when there is no such root. Undefined for a module that
 * is no local file.
 */
export function moduleReadScope(url: string | undefined): string | undefined {
  if (!url?.startsWith("file:")) return undefined;
  const start = dirname(fileURLToPath(url));
  for (let dir = start;; dir = dirname(dir)) {
    if (projectMarkers.some((marker) => exists(join(dir, marker)))) return dir;
    if (dirname(dir) === dir) return start;
  }
}

function exists(path: string): boolean {
  try {
    return existsSync(path);
  } catch {
    return false;
  }
}
