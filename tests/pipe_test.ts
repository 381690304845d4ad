import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { type Connection, Pipe, Process, Thread, TimeoutError } from "../mod.ts";

async function echo(end: Connection<string>, count: number): Promise<void> {
  for (let i = 0; i < count; i++) await end.send(`echo ${await end.recv()}`);
}

for (const Kind of [Thread, Process]) {
  const kind = Kind === Thread ? "a thread" : "a process";
  Deno.test(`Pipe carries messages both ways, in order, with ${kind}`, async () => {
    const [here, there] = Pipe<string>();
    const worker = new Kind({ target: echo, args: [there, 3] });
    worker.start();
    for (const word of ["a", "b", "c"]) await here.send(word);
    assert(await here.poll(10_000));
    const replies = [await here.recv(), await here.recv(), await here.recv()];
    await worker.join();
    assertEquals(worker.error, undefined);
    assertEquals(replies, ["echo a", "echo b", "echo c"]);
    assertEquals(await here.poll(), false);
  });
}

Deno.test("Pipe({ duplex: false }) gives a receiving end and a sending end", async () => {
  const [receiver, sender] = Pipe<number>({ duplex: false });
  assert(receiver.readable && !receiver.writable);
  assert(sender.writable && !sender.readable);
  await assertRejects(() => receiver.send(1), Error, "only receives");
  await assertRejects(() => sender.recv(), Error, "only sends");
  const worker = new Process({
    target: async (end: Connection<number>) => {
      for (let i = 0; i < 3; i++) await end.send(i);
    },
    args: [sender],
  });
  worker.start();
  assertEquals([await receiver.recv(), await receiver.recv(), await receiver.recv()], [0, 1, 2]);
  await worker.join();
  assertThrows(() => Pipe({ duplex: "yes" as unknown as boolean }), TypeError, "'duplex'");
});

Deno.test("Connection.poll() waits up to its timeout, and recv() times out", async () => {
  const [a, b] = Pipe();
  const started = performance.now();
  assertEquals(await a.poll(50), false);
  assert(performance.now() - started >= 40);
  await assertRejects(() => a.recv({ timeoutMs: 20 }), TimeoutError);
  a.close();
  await assertRejects(() => a.recv(), Error, "closed");
  await b.send("unread");
});
