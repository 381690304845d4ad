/**
 * The permission policy, which both runtimes share: checking the `permissions` option, and
 * resolving it against what the parent holds. Turning the result into a runtime's flags is the
 * platform seam's job; the seam answers only "does this process hold that?".
 *
 * Rules this file keeps:
 * - A child never holds more than its parent: every grant is checked against the parent.
 * - A grant reaches the runtime exactly as checked: no item can hold a list separator (Deno splits
 *   `--allow-read=a,b` on commas), and paths are made absolute and listed once (Node 20 aborts on a
 *   repeated path).
 *
 * @module
 */
import { existsSync, readdirSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
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

/** One permission kind. */
export type PermissionName = typeof PERMISSION_NAMES[number];

/** The kinds whose items are file system paths. */
const PATH_KINDS: ReadonlySet<PermissionName> = new Set(["read", "write", "ffi"]);

/** How a child process is started, beyond its start method. */
export interface ChildCommandOptions {
  permissions?: PermissionsOption;
  maxHeapMb?: number;
  /** The child's whole environment; undefined for the parent's. */
  env?: Record<string, string>;
}

/** A child's command line, and its whole environment where it is not the parent's. */
export interface ChildCommand {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/**
 * Checks an `env` option: a plain object of variable names to string values, each name non-empty
 * and without `=` or NUL, each value without NUL, which no environment can hold.
 *
 * @returns A copy, so that later changes to the caller's object do not reach the child.
 * @throws {TypeError} Naming the variable and what is wrong with it.
 */
export function checkEnv(value: unknown, what: string): Record<string, string> | undefined {
  if (value === undefined) return undefined;
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    ![Object.prototype, null].includes(Object.getPrototypeOf(value))
  ) {
    throw new TypeError(
      `${what} 'env' must be a plain object of variable names to strings, such as { LANG: "C" }: received ${
        describeValue(value)
      }`,
    );
  }
  const env: Record<string, string> = {};
  for (const [name, text] of Object.entries(value)) {
    if (name === "" || name.includes("=") || name.includes("\0")) {
      throw new TypeError(
        `${what} 'env' names must be non-empty, without '=' or NUL: received ${
          describeValue(name)
        }`,
      );
    }
    if (typeof text !== "string" || text.includes("\0")) {
      throw new TypeError(
        `${what} 'env.${name}' must be a string without NUL: received ${describeValue(text)}`,
      );
    }
    env[name] = text;
  }
  return env;
}

/**
 * Narrows resolved grants to the variables of an `env` option: a child given its own environment
 * reads those variables at most, whatever else the runtime needs in its environment to start.
 */
export function narrowEnvGrant(grants: Grants, env: Record<string, string>): Grants {
  const narrowed = grants === "all"
    ? new Map(PERMISSION_NAMES.map((name) => [name, true] as [PermissionName, true]))
    : new Map(grants);
  const names = Object.keys(env);
  const held = narrowed.get("env");
  const allowed = held === undefined
    ? []
    : held === true
    ? names
    : held.filter((n) => names.includes(n));
  if (allowed.length > 0) narrowed.set("env", allowed);
  else narrowed.delete("env");
  return narrowed;
}

/**
 * Adds to resolved grants what a Deno child needs to open its sealed channel, and nothing more:
 * read, write and net access to the one socket path, which the parent removes as soon as the child
 * has joined. A kind held in full is left as it is.
 */
export function withChannelGrant(grants: Grants, path: string): Grants {
  if (grants === "all") return grants;
  const granted = new Map(grants);
  const items: Array<[PermissionName, string]> = [
    ["read", path],
    ["write", path],
    ["net", `unix:${path}`],
  ];
  for (const [name, item] of items) {
    const held = granted.get(name);
    if (held === true) continue;
    granted.set(name, [...(held ?? []), checkGrantItem(item, "The channel's socket path")]);
  }
  return granted;
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
    if (Array.isArray(grant)) {
      for (const item of grant) {
        checkGrantItem(
          item,
          `${what} 'permissions.${name}'`,
          PATH_KINDS.has(name as PermissionName),
        );
      }
    }
  }
  return value as ChildPermissions;
}

/**
 * Checks one item of a grant list (or a path granted implicitly): never empty, which Deno reads as
 * "everything" or refuses, and without a comma, which Deno reads as a list separator, so that the
 * child would hold each part, checked or not.
 *
 * @param path Whether the item is a path, for the fix that the message suggests.
 * @throws {TypeError} Naming the item and the fix.
 */
export function checkGrantItem(item: string, what: string, path = true): string {
  if (item === "") {
    throw new TypeError(`${what} items must be non-empty strings: received ""`);
  }
  if (item.includes(",")) {
    throw new TypeError(
      `${what} items cannot contain a comma, which the runtime reads as a list separator: received ${
        describeValue(item)
      }; ${path ? "grant a folder above it, or rename it" : "list each item as its own string"}`,
    );
  }
  return item;
}

/** What a child is granted, kind by kind; a kind that is absent is not granted. */
export type Grants = "all" | Map<PermissionName, true | string[]>;

/**
 * Whether this process holds a permission: the whole kind when `item` is undefined, else that one
 * item (a path, host, variable or command). Each runtime answers it.
 */
export type HoldsPermission = (name: PermissionName, item?: string) => boolean;

/**
 * Resolves a `permissions` option against what this process holds: never more. Path items are made
 * absolute and each item is listed once. The read grant always covers the modules that the child
 * must import, where the parent may read them.
 *
 * @param permissions The checked option.
 * @param what The API that took it, for messages.
 * @param holds How this runtime answers whether the parent holds a permission.
 * @param modules URLs of the modules that the child imports (its entry, the main module).
 * @param denied Where a runtime that can deny paths inside a granted folder wants the secret files
 * of the modules' folders (see `withoutSecrets`); without it, those folders are granted entry by
 * entry, the secrets left out.
 * @returns `"all"` when the child holds everything, else the grants kind by kind.
 * @throws {TypeError} When a grant asks for something that the parent does not hold.
 */
export function resolveGrants(
  permissions: PermissionsOption,
  what: string,
  holds: HoldsPermission,
  modules: ReadonlyArray<string | undefined>,
  denied?: string[],
): Grants {
  const grants: Map<PermissionName, true | string[]> = new Map();
  if (permissions === "inherit") {
    const held = PERMISSION_NAMES.filter((name) => holds(name));
    if (held.length === PERMISSION_NAMES.length) return "all";
    for (const name of held) grants.set(name, true);
  } else if (permissions !== "none") {
    for (const name of PERMISSION_NAMES) {
      const grant = permissions[name];
      if (grant === true) {
        if (!holds(name)) throw moreThanHeld(what, name, "true");
        grants.set(name, true);
      } else if (Array.isArray(grant) && grant.length > 0) {
        const items = normaliseItems(name, grant, `${what} 'permissions.${name}'`);
        for (const item of items) {
          if (!holds(name, item)) {
            throw moreThanHeld(what, name, describeValue(item), item);
          }
        }
        grants.set(name, items);
      }
    }
  }
  const read = grants.get("read");
  if (read !== true) {
    // The child must read its entry and the main module to import them. It may read them only
    // where the parent may: never more than the parent holds.
    const scopes = [...new Set(modules.map(moduleReadScope))]
      .filter((path): path is string => path !== undefined)
      .flatMap((scope) => withoutSecrets(scope, read ?? [], holds, denied))
      .map((path) => checkGrantItem(path, `The folder of a module that ${what} must import`));
    const paths = normaliseItems("read", [...(read ?? []), ...scopes], what);
    if (paths.length > 0) grants.set("read", paths);
  }
  return grants;
}

/** The names of files that hold secrets by convention: `.env`, `.env.local`, `.env.production`. */
const SECRET_FILE = /^\.env(\..+)?$/;

/**
 * What of a module folder (`scope`) a child may read to import its modules. Where the folder holds
 * secret files (`.env`, `.env.*`) at its top that the caller's own read grant (`own`, absolute paths)
 * leaves out, they go to `denied` if given (the folder is granted, those files denied), else the
 * folder is granted entry by entry without them: either way a child can import every module in it
 * and never read its `.env`. Only what this process may read: never more than the parent holds.
 */
function withoutSecrets(
  scope: string,
  own: readonly string[],
  holds: HoldsPermission,
  denied: string[] | undefined,
): string[] {
  const covered = (file: string) =>
    own.some((item) => file === item || file.startsWith(item.endsWith(sep) ? item : item + sep));
  let names: string[];
  try {
    names = readdirSync(scope);
  } catch {
    // A child that holds the entries only cannot list them: nothing to pass on.
    return holds("read", scope) ? [scope] : [];
  }
  const secret = (name: string) => SECRET_FILE.test(name) && !covered(join(scope, name));
  const secrets = names.filter(secret);
  if (secrets.length === 0 || (denied && holds("read", scope))) {
    // A name with a comma cannot be one item of Deno's list.
    denied?.push(...secrets.filter((name) => !name.includes(",")).map((name) => join(scope, name)));
    return holds("read", scope) ? [scope] : [];
  }
  return names
    .filter((name) => !secret(name) && !name.includes(","))
    .map((name) => join(scope, name))
    .filter((path) => holds("read", path));
}

/** The items of a grant, each once; paths made absolute, without a trailing separator. */
function normaliseItems(name: PermissionName, items: readonly string[], what: string): string[] {
  const checked = items.map((item) => checkGrantItem(item, what, PATH_KINDS.has(name)));
  return [...new Set(PATH_KINDS.has(name) ? checked.map((item) => resolve(item)) : checked)];
}

// The flags of Node 20's permission model, for the kinds that it enforces.
const nodeFlags: Partial<Record<PermissionName, string>> = {
  read: "--allow-fs-read",
  write: "--allow-fs-write",
  run: "--allow-child-process",
};

function moreThanHeld(
  what: string,
  name: PermissionName,
  value: string,
  item?: string,
): TypeError {
  const deno = item === undefined ? `--allow-${name}` : `--allow-${name}=${item}`;
  const base = nodeFlags[name];
  // Node's --allow-child-process takes no list of programs.
  const node = base && (item === undefined || name === "run" ? base : `${base}=${item}`);
  return new TypeError(
    `${what} 'permissions.${name}' asks for more than this process holds: ${value}; start the parent with ${deno}${
      node ? ` (Node: ${node})` : ""
    } first`,
  );
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
