import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { type Connection, EOFError, Pipe, Process, Thread, TimeoutError } from "../mod.ts";

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

// ---------------------------------------------------------------------------------------------
// Python fidelity

Deno.test("Pipe(false) is Python's one-way pipe: the first end receives what the second sends", async () => {
  const [receiver, sender] = Pipe<number>(false);
  assert(receiver.readable && !receiver.writable);
  assert(sender.writable && !sender.readable);
  await sender.send(7);
  assertEquals(await receiver.recv(), 7);
  const [a, b] = Pipe<number>(true);
  assert(a.readable && a.writable && b.readable && b.writable);
  assertThrows(() => Pipe({ duplx: false } as never), TypeError, "did you mean 'duplex'");
});

Deno.test("Connection.recv() raises EOFError at once when the other end was closed and nothing is left, as in Python", async () => {
  const [a, b] = Pipe<string>();
  await b.send("last words");
  b.close();
  assertEquals(await a.recv(), "last words");
  const started = performance.now();
  await assertRejects(() => a.recv(), EOFError);
  await assertRejects(() => a.recv({ timeoutMs: 10_000 }), EOFError);
  assert(performance.now() - started < 5000, "recv() waited instead of raising");
  assert(await a.poll(), "poll() says that recv() would not wait");
  await assertRejects(() => a.poll(-1), RangeError, "'timeoutMs'");
});

for (const Kind of [Thread, Process]) {
  const kind = Kind === Thread ? "thread" : "process";
  Deno.test(`Connection.recv() raises EOFError once the ${kind} holding the other end has ended, as in Python`, async () => {
    const [here, there] = Pipe<string>();
    const worker = new Kind({
      target: async (end: Connection<string>) => await end.send("bye"),
      args: [there],
    });
    worker.start();
    // As in Python, the parent closes its own copy of the child's end.
    there.close();
    assertEquals(await here.recv({ timeoutMs: 20_000 }), "bye");
    await worker.join();
    assertEquals(worker.error, undefined);
    await assertRejects(() => here.recv({ timeoutMs: 20_000 }), EOFError);
  });
}

Deno.test("Connection.recv() waits while a copy of the other end is still open, as in Python", async () => {
  const [here, there] = Pipe<string>();
  const worker = new Process({ target: (_end: Connection<string>) => "done", args: [there] });
  worker.start();
  await worker.join();
  // The parent's copy of `there` is still open: no end of file yet.
  await assertRejects(() => here.recv({ timeoutMs: 50 }), TimeoutError);
  there.close();
  await assertRejects(() => here.recv(), EOFError);
});

Deno.test("Connection.sendBytes() and recvBytes() carry raw bytes, with Python's offset, size and maxLength", async () => {
  const [here, there] = Pipe();
  const worker = new Process({
    target: async (end: Connection) => {
      const bytes = await end.recvBytes();
      await end.sendBytes(bytes.map((byte) => byte * 2));
      await end.sendBytes(new Uint8Array(10));
    },
    args: [there],
  });
  worker.start();
  const source = new Uint8Array([9, 1, 2, 3, 9]);
  await here.sendBytes(source, 1, 3);
  assertEquals(await here.recvBytes(), new Uint8Array([2, 4, 6]));
  await assertRejects(() => here.recvBytes(4), RangeError, "'maxLength' 4");
  await worker.join();
  assertEquals(worker.error, undefined);
  await assertRejects(() => here.sendBytes(source, 4, 2), RangeError, "'size'");
  await assertRejects(() => here.sendBytes("text" as never), TypeError, "'buffer'");
  const [x, y] = Pipe();
  await y.send("text");
  await assertRejects(() => x.recvBytes(), TypeError, "send it with sendBytes()");
});
