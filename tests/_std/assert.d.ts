// deno-lint-ignore-file no-explicit-any
/**
 * Types of `@std/assert` (Deno std 1.x), for its untyped copy in the npm package `deno-std`.
 * Every assertion throws {@linkcode AssertionError} when it does not hold; `msg` replaces the
 * default message.
 *
 * @module
 */

/** The error that a failed assertion throws. */
export declare class AssertionError extends Error {
  /**
   * Makes an assertion error.
   *
   * @param message What did not hold.
   * @param options The cause, if any.
   */
  constructor(message: string, options?: ErrorOptions);
}

/** A value that `if` treats as false. */
export type Falsy = false | 0 | 0n | "" | null | undefined;

/** Any class. */
export type AnyConstructor = new (...args: any[]) => any;

/** The type of the instances of class `T`. */
export type GetConstructorType<T extends AnyConstructor> = InstanceType<T>;

/** An array or array-like object. */
export type ArrayLikeArg<T> = ArrayLike<T> & object;

/** Asserts that `expr` is truthy. */
export declare function assert(expr: unknown, msg?: string): asserts expr;

/** Asserts that `expr` is falsy. */
export declare function assertFalse(expr: unknown, msg?: string): asserts expr is Falsy;

/** Asserts that `actual` and `expected` are deeply equal. */
export declare function assertEquals<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` and `expected` are not deeply equal. */
export declare function assertNotEquals<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` and `expected` are the same value, as `Object.is` tells. */
export declare function assertStrictEquals<T>(
  actual: unknown,
  expected: T,
  msg?: string,
): asserts actual is T;

/** Asserts that `actual` and `expected` are not the same value, as `Object.is` tells. */
export declare function assertNotStrictEquals<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` and `expected` differ by at most `tolerance` (default `1e-7`). */
export declare function assertAlmostEquals(
  actual: number,
  expected: number,
  tolerance?: number,
  msg?: string,
): void;

/** Asserts that `actual` is neither `null` nor `undefined`. */
export declare function assertExists<T>(actual: T, msg?: string): asserts actual is NonNullable<T>;

/** Asserts that `actual` is an instance of `expectedType`. */
export declare function assertInstanceOf<T extends AnyConstructor>(
  actual: unknown,
  expectedType: T,
  msg?: string,
): asserts actual is GetConstructorType<T>;

/** Asserts that `actual` is not an instance of `unexpectedType`. */
export declare function assertNotInstanceOf<A, T>(
  actual: A,
  unexpectedType: abstract new (...args: any[]) => T,
  msg?: string,
): asserts actual is Exclude<A, T>;

/**
 * Asserts that `error` is an `Error`, optionally of class `ErrorClass` and with a message that
 * includes `msgMatches` (or matches it, for a RegExp).
 */
export declare function assertIsError<E extends Error = Error>(
  error: unknown,
  ErrorClass?: abstract new (...args: any[]) => E,
  msgMatches?: string | RegExp,
  msg?: string,
): asserts error is E;

/** Asserts that `actual` is greater than `expected`. */
export declare function assertGreater<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` is greater than or equal to `expected`. */
export declare function assertGreaterOrEqual<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` is less than `expected`. */
export declare function assertLess<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` is less than or equal to `expected`. */
export declare function assertLessOrEqual<T>(actual: T, expected: T, msg?: string): void;

/** Asserts that `actual` matches the regular expression `expected`. */
export declare function assertMatch(actual: string, expected: RegExp, msg?: string): void;

/** Asserts that `actual` does not match the regular expression `expected`. */
export declare function assertNotMatch(actual: string, expected: RegExp, msg?: string): void;

/** Asserts that `actual` includes the string `expected`. */
export declare function assertStringIncludes(actual: string, expected: string, msg?: string): void;

/** Asserts that `actual` includes every value of `expected`, compared deeply. */
export declare function assertArrayIncludes<T>(
  actual: ArrayLikeArg<T>,
  expected: ArrayLikeArg<T>,
  msg?: string,
): void;

/** Asserts that `actual` has the properties of `expected`, with deeply equal values. */
export declare function assertObjectMatch(
  actual: Record<PropertyKey, any>,
  expected: Record<PropertyKey, unknown>,
  msg?: string,
): void;

/**
 * Asserts that `fn` throws, and returns what it threw.
 *
 * @returns The thrown value.
 */
export declare function assertThrows(fn: () => unknown, msg?: string): unknown;
/**
 * Asserts that `fn` throws an instance of `ErrorClass` whose message includes `msgIncludes`, and
 * returns the error.
 *
 * @returns The thrown error.
 */
export declare function assertThrows<E extends Error = Error>(
  fn: () => unknown,
  ErrorClass: abstract new (...args: any[]) => E,
  msgIncludes?: string,
  msg?: string,
): E;

/**
 * Asserts that the promise that `fn` returns rejects, and returns the rejection reason.
 *
 * @returns The rejection reason.
 */
export declare function assertRejects(
  fn: () => PromiseLike<unknown>,
  msg?: string,
): Promise<unknown>;
/**
 * Asserts that the promise that `fn` returns rejects with an instance of `ErrorClass` whose
 * message includes `msgIncludes`, and returns the error.
 *
 * @returns The rejection reason.
 */
export declare function assertRejects<E extends Error = Error>(
  fn: () => PromiseLike<unknown>,
  ErrorClass: abstract new (...args: any[]) => E,
  msgIncludes?: string,
  msg?: string,
): Promise<E>;

/** Deep equality, as {@linkcode assertEquals} uses it. */
export declare function equal(a: unknown, b: unknown): boolean;

/** Fails the test with `msg`. */
export declare function fail(msg?: string): never;

/** Marks code that is not written yet: always throws. */
export declare function unimplemented(msg?: string): never;

/** Marks code that cannot be reached: always throws. */
export declare function unreachable(msg?: string): never;
