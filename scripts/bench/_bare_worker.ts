/** A hand-written worker doing the start benchmark's job with nothing of multiproc. */
/// <reference lib="deno.worker" />
self.onmessage = async (event: MessageEvent<string>) => {
  const { firstLine } = await import(event.data);
  self.postMessage(firstLine());
};
