/**
 * The one-time tokens that a child process proves itself with, on whichever channel it uses: made
 * by the parent, compared by the parent or by its channel relay.
 *
 * Rules this file keeps:
 * - Tokens come from the system's cryptographic source, and a comparison takes as long whatever
 *   part of the token matched.
 *
 * @module
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { TOKEN_BYTES } from "./_frames.ts";

/** A one-time token, for one child to prove itself with. */
export function newToken(): Uint8Array {
  return new Uint8Array(randomBytes(TOKEN_BYTES));
}

/** Whether `given` is `token`, compared in a time that does not tell how much of it matched. */
export function sameToken(given: Uint8Array, token: Uint8Array): boolean {
  return given.length === token.length && timingSafeEqual(given, token);
}
