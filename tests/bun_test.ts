/**
 * What Bun lacks is refused, not ignored: it has no permission model and its engine takes no heap
 * limit, so a child there cannot be held to either. The rest of the suite runs on Bun as it is.
 */
import { assertThrows } from "@std/assert";
import { type PermissionsOption, Pool, Process, Thread, ThreadPool } from "../mod.ts";
import { runtime } from "./_runtime.deno.ts";

const onBun = runtime === "bun";

function square(n: number): number {
  return n * n;
}

Deno.test({
  name: "On Bun, Process and Pool refuse 'permissions' other than inherit, naming Bun",
  ignore: !onBun,
  fn() {
    for (const permissions of ["none", { read: ["."] }] satisfies PermissionsOption[]) {
      assertThrows(() => new Process({ target: square, permissions }), TypeError, "on Bun");
      assertThrows(() => new Pool({ permissions }), TypeError, "on Bun");
    }
    // "inherit" holds on every runtime: the child has what the parent has.
    new Process({ target: square, args: [2], permissions: "inherit" });
  },
});

Deno.test({
  name: "On Bun, every kind of worker refuses 'maxHeapMb'",
  ignore: !onBun,
  fn() {
    assertThrows(() => new Process({ target: square, maxHeapMb: 64 }), TypeError, "on Bun");
    assertThrows(() => new Pool({ maxHeapMb: 64 }), TypeError, "on Bun");
    assertThrows(() => new Thread({ target: square, maxHeapMb: 64 }), TypeError, "'maxHeapMb'");
    assertThrows(() => new ThreadPool({ maxHeapMb: 64 }), TypeError, "'maxHeapMb'");
  },
});
