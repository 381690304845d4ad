/**
 * Least privilege around the channel and the command line. A child's control channel is a Unix
 * socket that the child opens itself (so close-on-exec: the programs it runs inherit nothing), in
 * a private folder that goes as soon as the child has joined with its one-time token; the child's
 * end has no name and no port. Children start from an argument array, never through a shell.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import process from "node:process";
import { Pool, Process } from "../mod.ts";
import { runFixture } from "./_helpers.ts";
import { moduleExtension, runtime, scriptCommand } from "./_runtime.deno.ts";
import { add, readLength, targetsUrl, workerPid } from "./fixtures/targets.ts";
import { channelTargetsUrl, forgeFromGrandchild } from "./fixtures/channel_targets.ts";
import { connect } from "node:net";

// Forkserver spares outlive each test by design; they are stopped when the test run exits.
const test = (name: string, fn: () => Promise<void>, options: { ignore?: boolean } = {}) =>
  Deno.test({ name, fn, ...options, sanitizeOps: false, sanitizeResources: false });
// Grants are refused on Bun, which has no permission model: see tests/bun_test.ts.
const grantTest = (name: string, fn: () => Promise<void>) =>
  test(name, fn, { ignore: runtime === "bun" });

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

/**
 * The sealed channel's socket path, from a child's command line (after the child-process flag and
 * the parent's pid); undefined once the child has no such argument.
 */
async function channelPath(pid: number): Promise<string | undefined> {
  // A child started through setpriv shows setpriv's command line until it has become the runtime.
  for (let tries = 0; tries < 200; tries++) {
    let words: string[];
    try {
      words = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    } catch {
      return undefined;
    }
    const at = words.indexOf("--multiproc-child-process");
    if (at >= 0) return words[at + 2] || undefined;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  return undefined;
}

/**
 * Connects to `path` and sends a frame with a wrong token: `"closed"` when the listener closed the
 * connection without a word, `"no socket"` when there was none to connect to (the child had joined),
 * `"answered"` when anything came back.
 */
function intrude(path: string): Promise<"closed" | "no socket" | "answered"> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.on("error", () => resolve("no socket"));
    socket.on("connect", () => {
      const frame = new Uint8Array(36);
      frame[3] = 32;
      frame.fill(7, 4);
      socket.write(frame);
    });
    socket.on("data", () => {
      resolve("answered");
      socket.destroy();
    });
    socket.on("close", () => resolve("closed"));
  });
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

  test(`A program run by a child holds no socket of its channel, and its forged outcome never arrives${suffix}`, async () => {
    const expected = { outcome: "real", sockets: [] };
    const child = new Process({
      target: forgeFromGrandchild,
      module: channelTargetsUrl,
      startMethod: method,
    });
    child.start();
    await child.join();
    assertEquals(child.exitCode, 0, String(child.error));
    assertEquals(child.result, expected);
    await using pool = new Pool({ size: 1, startMethod: method, module: channelTargetsUrl });
    assertEquals(await pool.apply(forgeFromGrandchild), expected);
    assertEquals(await pool.apply(forgeFromGrandchild), expected, "the worker still serves");
  });

  test(`A connection with a wrong token is refused, the child still starts, and no file is left${suffix}`, async () => {
    // The channel's path is on the child's command line, which any process of the user can read.
    let refused = 0;
    for (let attempt = 0; attempt < 5 && refused === 0; attempt++) {
      const child = new Process({
        target: add,
        args: [2, 3],
        module: targetsUrl,
        startMethod: method,
      });
      child.start();
      const path = await channelPath(child.pid!);
      if (path !== undefined) {
        const outcome = await intrude(path);
        if (outcome === "closed") refused++;
        else assertEquals(outcome, "no socket", "an intruder was answered");
      }
      await child.join();
      assertEquals(child.exitCode, 0, String(child.error));
      assertEquals(child.result, 5);
      if (path !== undefined) assert(!existsSync(dirname(path)), `${dirname(path)} was left`);
    }
    // A forkserver spare joined its channel long before it was handed out: nothing to intrude on.
    if (method === "spawn") assert(refused > 0, "no intruder reached a listening channel");
  });

  grantTest(
    `Process start uses no shell: grant paths with shell syntax arrive intact${suffix}`,
    async () => {
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
    },
  );
}

const kinds = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

test("Grant items with a comma, which Deno splits, are refused on every kind", () => {
  const scratch = mkdtempSync(join(tmpdir(), "multiproc-comma-"));
  try {
    // One path checked whole, then split by the runtime into a granted and an ungranted one.
    const item = `${scratch}/a,/etc`;
    for (const kind of kinds) {
      for (
        const create of [
          () => new Process({ target: add, args: [1, 2], permissions: { [kind]: [item] } }),
          () => new Pool({ size: 1, permissions: { [kind]: [item] } }),
        ]
      ) {
        let error: unknown;
        try {
          create();
        } catch (e) {
          error = e;
        }
        assert(error instanceof TypeError, `${kind}: expected a TypeError, got ${error}`);
        assertStringIncludes(error.message, `'permissions.${kind}'`);
        assertStringIncludes(error.message, "comma");
        assertStringIncludes(error.message, JSON.stringify(item));
        // The fix fits the kind: a folder for paths, separate items for hosts, names, programs.
        const path = kind === "read" || kind === "write" || kind === "ffi";
        assertStringIncludes(error.message, path ? "folder above it" : "its own string");
      }
    }
    return Promise.resolve();
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

grantTest(
  "A path granted twice, with a trailing separator or relative, reaches the child once",
  async () => {
    const scratch = mkdtempSync(join(tmpdir(), "multiproc-twice-"));
    try {
      const file = join(scratch, "data.txt");
      writeFileSync(file, "eleven byte");
      const child = new Process({
        target: readLength,
        args: [file],
        module: targetsUrl,
        // Node 20 aborts a child given the same path twice (exit -6).
        permissions: { read: [scratch, scratch, `${scratch}/`, join(scratch, "..", "x", "..")] },
      });
      child.start();
      await child.join();
      assertEquals(child.exitCode, 0, String(child.error));
      assertEquals(child.result, "eleven byte".length);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
);

/** The channel relays among a process's children: each one's pid and folder. */
function relaysOf(parent: number): Array<{ pid: number; folder: string }> {
  const relays: Array<{ pid: number; folder: string }> = [];
  for (const task of readdirSync(`/proc/${parent}/task`)) {
    let children: string[];
    try {
      children = readFileSync(`/proc/${parent}/task/${task}/children`, "utf8").split(" ");
    } catch {
      continue;
    }
    for (const pid of children.filter(Boolean).map(Number)) {
      try {
        const words = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
        if (words.some((word) => word.includes("_relay_main"))) {
          relays.push({ pid, folder: words.at(-1)! });
        }
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return relays;
}

function isAlive(pid: number): boolean {
  try {
    // A zombie has no command line left to read.
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").length > 0;
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

/** The JSON lines of a fixture's stdout, by label. */
function outcomesOf(text: string): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    text.trim().split("\n").map((line) => {
      const { label, ...outcome } = JSON.parse(line);
      return [label, outcome];
    }),
  );
}

// A Deno parent without --allow-write and --allow-net may not make a Unix socket: its children's
// sealed channels are made by its channel relay, a helper process that runs no user code.
test(
  "Through a parent's channel relay, a program run by a child holds no socket, and its forged outcome never arrives",
  async () => {
    let relays: Array<{ pid: number; folder: string }> = [];
    const out = await runFixture("channel_relay", [], {
      timeoutMs: 60_000,
      onStdout: (text) => {
        const pids = /"label":"pids","parent":(\d+)/.exec(text);
        if (pids && relays.length === 0) relays = relaysOf(Number(pids[1]));
      },
    });
    assertEquals(out.code, 0, out.stderrText);
    assertEquals(out.stderrText, "");
    const outcomes = outcomesOf(out.stdoutText);
    const real = { outcome: "real", sockets: [] };
    assertEquals(outcomes["process spawn"], { exitCode: 0, result: real });
    assertEquals(outcomes["process forkserver"], { exitCode: 0, result: real });
    assertEquals(outcomes["pool"], { result: real });
    // One relay served them all, and went with the parent, folder and all.
    assertEquals(relays.length, 1, "the children's channels went through one relay");
    assert(await waitUntil(() => !isAlive(relays[0].pid), 2000), "the relay outlived its parent");
    assert(!existsSync(relays[0].folder), `${relays[0].folder} was left`);
  },
  { ignore: runtime !== "deno" },
);

test(
  "A channel relay and the children it serves end within 2 s of their parent's SIGKILL, and leave no folder",
  async () => {
    let seen:
      | { relays: Array<{ pid: number; folder: string }>; worker: number; existed: boolean }
      | undefined;
    const out = await runFixture("channel_relay", ["wait"], {
      timeoutMs: 60_000,
      onStdout: (text, kill) => {
        const pids = /"label":"pids","parent":(\d+),"worker":(\d+)/.exec(text);
        if (!pids || seen) return;
        const relays = relaysOf(Number(pids[1]));
        seen = {
          relays,
          worker: Number(pids[2]),
          existed: relays.every((r) => existsSync(r.folder)),
        };
        kill();
      },
    });
    assertEquals(out.signal, "SIGKILL");
    assert(seen, out.stderrText);
    assertEquals(seen.relays.length, 1);
    const [relay] = seen.relays;
    assert(seen.existed, "the relay's folder existed while it ran");
    const gone = () => !isAlive(relay.pid) && !isAlive(seen!.worker);
    assert(await waitUntil(gone, 2000), "the relay or the worker outlived the parent");
    assert(await waitUntil(() => !existsSync(relay.folder), 2000), `${relay.folder} was left`);
  },
  { ignore: runtime !== "deno" },
);

test(
  "When a channel relay dies, its children go with it and a pool replaces its worker through a new one",
  async () => {
    let killed: { relay: number; worker: number } | undefined;
    const out = await runFixture("channel_relay", ["kill-relay"], {
      timeoutMs: 60_000,
      onStdout: (text) => {
        const pids = /"label":"pids","parent":(\d+),"worker":(\d+)/.exec(text);
        if (!pids || killed) return;
        const [relay] = relaysOf(Number(pids[1]));
        killed = { relay: relay?.pid ?? 0, worker: Number(pids[2]) };
        if (relay) process.kill(relay.pid, "SIGKILL");
      },
    });
    assertEquals(out.code, 0, out.stderrText);
    assert(killed && killed.relay > 0, "no relay was found");
    assertEquals(outcomesOf(out.stdoutText)["after relay"], { result: 5, replaced: true });
    assert(!isAlive(killed.worker), "the worker whose relay died was left running");
  },
  { ignore: runtime !== "deno" },
);

// Node always makes the sealed channel; a Deno parent without --allow-write and --allow-net has its
// relay make it. Only where the temporary folder's path cannot be granted (it holds a comma) does a
// child get Node's IPC channel, which the programs that it runs inherit as descriptor 3.
test(
  "On the IPC fallback, a forged outcome never arrives and unreadable bytes end only the child",
  async () => {
    const base = mkdtempSync(join(tmpdir(), "multiproc-comma,"));
    const out = await runFixture("channel_fallback", [], {
      timeoutMs: 60_000,
      env: { TMPDIR: base },
    }).finally(() => rmSync(base, { recursive: true, force: true }));
    assertEquals(out.code, 0, out.stderrText);
    assertEquals(out.stderrText, "", "an ended child failed loudly");
    const outcomes = outcomesOf(out.stdoutText);
    // The program found the channel and wrote to it: this is the fallback, and the forgery ran.
    const real = { outcome: "real", sockets: ["3"] };
    assertEquals(outcomes["process"], { exitCode: 0, result: real });
    assertEquals(outcomes["pool"], { result: real });
    assertEquals(outcomes["pool again"], { result: real }, "the worker still serves");
    // Unreadable bytes end the child, unless it was done first: either way its join returns.
    assertEquals(typeof outcomes["junk"].exitCode, "number", JSON.stringify(outcomes["junk"]));
    const poolJunk = JSON.stringify(outcomes["pool junk"]);
    assert(
      poolJunk === '{"error":"WorkerCrashedError"}' || poolJunk === '{"result":"real"}',
      poolJunk,
    );
    assertEquals(outcomes["pool after junk"], { result: 5 }, "the pool replaced its worker");
  },
  { ignore: runtime !== "deno" },
);

grantTest(
  "A child never holds more than a restricted parent, and 'none' gets nothing of it",
  async () => {
    const scratch = mkdtempSync(join(tmpdir(), "multiproc-grants-"));
    try {
      const granted = join(scratch, "granted");
      mkdirSync(granted);
      const file = join(granted, "data.txt");
      writeFileSync(file, "for the child");
      const refused = join(scratch, "refused.txt");
      writeFileSync(refused, "not for anyone");
      // The parent reads the project (its modules) and one folder, runs programs, and no more.
      const project = dirname(dirname(fileURLToPath(import.meta.url)));
      const flags = runtime === "deno"
        ? [`--allow-read=${project},${granted}`, "--allow-env", "--allow-run"]
        : [
          "--experimental-permission",
          "--disable-warning=ExperimentalWarning",
          // The compiled tests' dependencies sit in node_modules beside the build.
          `--allow-fs-read=${dirname(project)}`,
          `--allow-fs-read=${granted}`,
          "--allow-child-process",
        ];
      const out = await runFixture("grant_probe", [file, refused], {
        runtimeFlags: flags,
        timeoutMs: 60_000,
      });
      assertEquals(out.code, 0, out.stderrText);
      const outcomes = Object.fromEntries(
        out.stdoutText.trim().split("\n").map((line) => {
          const { label, ...outcome } = JSON.parse(line);
          return [label, outcome];
        }),
      );
      assertStringIncludes(outcomes["read outside"].refused, "TypeError");
      assertStringIncludes(outcomes["read outside"].refused, "'permissions.read' asks for more");
      assertStringIncludes(outcomes["write"].refused, "'permissions.write' asks for more");
      // The flag to start the parent with, in this runtime's spelling.
      assertStringIncludes(
        outcomes["read outside"].refused,
        runtime === "deno" ? "--allow-read=" : "(Node: --allow-fs-read=",
      );
      // A child without grants can neither run programs nor read what its parent may read.
      assertEquals(outcomes["none runs"].exitCode, 1, JSON.stringify(outcomes["none runs"]));
      assertEquals(outcomes["none runs"].result, undefined);
      assertEquals(outcomes["none reads"].exitCode, 1, JSON.stringify(outcomes["none reads"]));
      assertEquals(outcomes["read granted"].exitCode, 0, JSON.stringify(outcomes["read granted"]));
      assertEquals(outcomes["read granted"].result, "for the child".length);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  },
);

grantTest(
  "A child reads no .env beside the main module through its modules' folder; its own grant or a whole read covers it",
  async () => {
    // A project of its own: the child may read this folder to import the main module from it.
    const project = mkdtempSync(join(tmpdir(), "multiproc-dotenv-"));
    try {
      // Deno would take a package.json for a node_modules folder of its own.
      if (runtime === "deno") writeFileSync(join(project, "deno.json"), "{}");
      else writeFileSync(join(project, "package.json"), '{ "type": "module" }');
      writeFileSync(join(project, ".env"), "SECRET=1");
      writeFileSync(join(project, ".env.local"), "LOCAL=1");
      mkdirSync(join(project, "data"));
      writeFileSync(join(project, "data", "a.txt"), "data");
      const library = new URL(`../mod${moduleExtension}`, import.meta.url).href;
      // Plain JavaScript over node:fs, which both runtimes run.
      writeFileSync(
        join(project, "main.mjs"),
        `import { readFileSync } from "node:fs";
import { Process, Thread } from ${JSON.stringify(library)};
export function tryRead(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "refused";
  }
}
export async function fromGrandchild(path) {
  const child = new Process({ target: tryRead, args: [path], module: import.meta.url });
  child.start();
  await child.join();
  return [child.exitCode, child.result];
}
const cases = [
  ["none", "none", tryRead, ".env"],
  ["none, .env.local", "none", tryRead, ".env.local"],
  ["data", { read: ["./data"] }, tryRead, ".env"],
  ["data, its own file", { read: ["./data"] }, tryRead, "data/a.txt"],
  ["own grant", { read: [".env"] }, tryRead, ".env"],
  ["inherit", "inherit", tryRead, ".env"],
  ["grandchild", { read: ["./data"], run: true, env: true }, fromGrandchild, ".env"],
];
if (globalThis[Symbol.for("multiproc.child")] !== true) {
  const results = {};
  for (const [label, permissions, target, file] of cases) {
    const child = new Process({ target, args: [${
          JSON.stringify(project)
        } + "/" + file], permissions });
    child.start();
    await child.join();
    results[label] = child.exitCode === 0 ? child.result : "exit " + child.exitCode;
  }
  if (process.argv.includes("thread")) {
    const thread = new Thread({ target: tryRead, args: [${
          JSON.stringify(project)
        } + "/.env"], permissions: "none" });
    thread.start();
    await thread.join();
    results["thread"] = thread.result;
  }
  console.log(JSON.stringify(results));
}
`,
      );
      // Deno's threads take permissions under this flag; Node's take "inherit" only.
      const { command, args } = runtime === "deno"
        ? scriptCommand(join(project, "main.mjs"), [
          "--allow-read",
          "--allow-env",
          "--allow-run",
          "--unstable-worker-options",
        ])
        : scriptCommand(join(project, "main.mjs"));
      const out = await promisify(execFile)(
        command,
        [...args, ...(runtime === "deno" ? ["thread"] : [])],
        { cwd: project, timeout: 60_000 },
      );
      // Node warns, rightly, of a child that may start programs (the grandchild's case).
      if (runtime === "deno") assertEquals(out.stderr, "");
      assertEquals(JSON.parse(out.stdout), {
        "none": "refused",
        "none, .env.local": "refused",
        "data": "refused",
        "data, its own file": "data",
        "own grant": "SECRET=1",
        // The parent reads everything, so "inherit" does too.
        "inherit": "SECRET=1",
        // A grandchild imports the main module from the same folder, and reads no more of it.
        "grandchild": [0, "refused"],
        ...(runtime === "deno" ? { thread: "refused" } : {}),
      });
    } finally {
      rmSync(project, { recursive: true, force: true });
    }
  },
);
