/**
 * Least privilege around the channel and the command line. A child's control channel is a
 * socketpair that it inherits as a file descriptor: it has no path and no port, so there is nothing
 * that another process could connect to, and no secret to steal. Children start from an argument
 * array, never through a shell.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Pool, Process } from "../mod.ts";
import { add, readLength, targetsUrl, workerPid } from "./fixtures/targets.ts";

// Forkserver spares outlive each test by design; they are stopped when the test run exits.
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

/** The inodes of the sockets that a process holds open. */
function socketInodes(pid: number): string[] {
  const inodes: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) inodes.push(match[1]);
    } catch {
      // A descriptor closed while we looked.
    }
  }
  return inodes;
}

/** The descriptors of a process that are sockets. */
function socketDescriptors(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
    } catch {
      return false;
    }
  });
}

/** Rows of a /proc/net table, each split into its columns. */
function netTable(name: string): string[][] {
  try {
    return readFileSync(`/proc/net/${name}`, "utf8").trim().split("\n").slice(1)
      .map((line) => line.trim().split(/\s+/));
  } catch {
    return [];
  }
}

for (const method of ["spawn", "forkserver"] as const) {
  const suffix = method === "spawn" ? "" : " under forkserver";

  test(`Pool worker's control channel has no path or port to connect to${suffix}`, async () => {
    await using pool = new Pool({ size: 1, startMethod: method, module: targetsUrl });
    const pid = await pool.apply(workerPid) as number;
    const inodes = socketInodes(pid);
    assert(inodes.length > 0, "the worker holds its channel as a socket");
    // Unix sockets: every one of the worker's is unnamed, neither a file nor an abstract name.
    const unix = new Map(netTable("unix").map((row) => [row[6], row[7]]));
    for (const inode of inodes) {
      if (unix.has(inode)) assertEquals(unix.get(inode), undefined, `socket ${inode} has a name`);
    }
    // No TCP or UDP socket at all, so no port.
    const inet = ["tcp", "tcp6", "udp", "udp6"].flatMap(netTable).map((row) => row[9]);
    for (const inode of inodes) assert(!inet.includes(inode), `socket ${inode} is an inet socket`);
    // Another user cannot even list the worker's descriptors.
    assertEquals(statSync(`/proc/${pid}/fd`).mode & 0o077, 0);
  });

  test(`A foreign process cannot open a worker's channel, and the worker goes on${suffix}`, async () => {
    await using pool = new Pool({ size: 1, startMethod: method, module: targetsUrl });
    const pid = await pool.apply(workerPid) as number;
    const fds = socketDescriptors(pid);
    assert(fds.length > 0);
    for (const fd of fds) {
      // Another program, of the same user even, tries to read the worker's end of the channel.
      const foreign = spawnSync("cat", [`/proc/${pid}/fd/${fd}`], { timeout: 10_000 });
      assert(foreign.status !== 0, `descriptor ${fd} of ${pid} could be read`);
      // A socket cannot be opened through /proc: the kernel answers ENXIO.
      assertStringIncludes(String(foreign.stderr), "No such device or address");
    }
    assertEquals(await pool.apply(add, [2, 3]), 5);
    assertEquals(await pool.apply(workerPid), pid, "the same worker still serves");
  });

  test(`Process start uses no shell: grant paths with shell syntax arrive intact${suffix}`, async () => {
    const scratch = mkdtempSync(join(tmpdir(), "multiproc-shell-"));
    const marker = join(process.cwd(), "multiproc-shell-probe");
    const strange = join(
      scratch,
      "a b;$(touch multiproc-shell-probe)`touch multiproc-shell-probe`'\"",
    );
    mkdirSync(strange);
    const file = join(strange, "data.txt");
    writeFileSync(file, "twelve bytes");
    try {
      const child = new Process({
        target: readLength,
        args: [file],
        module: targetsUrl,
        startMethod: method,
        permissions: { read: [strange] },
      });
      child.start();
      await child.join();
      assertEquals(child.exitCode, 0, String(child.error));
      assertEquals(child.result, "twelve bytes".length);
      assert(!existsSync(marker), "a shell ran the path's commands");
    } finally {
      rmSync(scratch, { recursive: true, force: true });
      rmSync(marker, { force: true });
    }
  });
}
