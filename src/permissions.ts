/**
 * What a child process may do: Deno's permissions, granted per child, never more than the parent
 * holds.
 *
 * @module
 */

/** A grant: `true` for everything of its kind, or a list (paths, hosts, variables, commands). */
export type PermissionGrant = boolean | string[];

/**
 * Permissions for a child, mapped to Deno's `--allow-*` flags. A kind that is left out is not
 * granted.
 *
 * On Node 20, only `read`, `write` and `run` are enforced, through Node's permission model
 * (`--experimental-permission`); `run` cannot be limited to a list of commands there. Node 20
 * cannot restrict `net`, `env`, `ffi`, `sys` or `import`: those stay open to a Node child.
 */
export interface ChildPermissions {
  /** File system reads: `--allow-read`. */
  read?: PermissionGrant;
  /** File system writes: `--allow-write`. */
  write?: PermissionGrant;
  /** Network access, by host: `--allow-net`. */
  net?: PermissionGrant;
  /** Environment variables: `--allow-env`. */
  env?: PermissionGrant;
  /** Running programs: `--allow-run`. */
  run?: PermissionGrant;
  /** Native libraries: `--allow-ffi`. */
  ffi?: PermissionGrant;
  /** System information: `--allow-sys`. */
  sys?: PermissionGrant;
  /** Remote modules, by host: `--allow-import`. */
  import?: PermissionGrant;
}

/**
 * The `permissions` option of a process:
 * - `"inherit"` (the default): exactly the permissions that the parent holds in full;
 * - `"none"`: nothing beyond reading the modules that the child must import;
 * - a {@linkcode ChildPermissions} object: those grants, each of which the parent must hold.
 */
export type PermissionsOption = "inherit" | "none" | ChildPermissions;
