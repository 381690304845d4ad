/**
 * The checks of every public argument and option, one rule per kind of value, and the timer that
 * gives those timeouts their meaning.
 *
 * Rules this file keeps:
 * - A value of the wrong type is a `TypeError`; a value of the right type outside its range is a
 *   `RangeError`. Both say which option, what it must be, and what was received, as
 *   `"'size' must be a positive integer: received 0"`: sentence case, no trailing period.
 * - Values are shown as written ({@linkcode describeValue}): a string quoted, a bigint with its `n`,
 *   so that `"10"` and `10` read differently.
 * - An argument is never ignored: an options argument that is not an object, and a key that no
 *   option has, are errors; `Infinity` as a timeout means no limit.
 * - It imports nothing from the library, so that every file may use it.
 *
 * @module
 */

/**
 * Describes a value for an error message: a string quoted, a number or bigint as written, and the
 * type of anything else.
 *
 * @param value Any value.
 * @returns A short description: `"10"`, `10`, `10n`, `function f`, `array of length 2`, `object Map`.
 */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return `function ${value.name || "(anonymous)"}`;
  if (typeof value === "symbol") return value.toString();
  if (Object.is(value, -0)) return "-0";
  if (value === null || typeof value !== "object") return String(value);
  if (Array.isArray(value)) return `array of length ${value.length}`;
  return `object ${value.constructor?.name ?? "Object"}`;
}

/** `'name'`, or `What 'name'` when the caller is named. */
function label(name: string, what: string | undefined): string {
  return what ? `${what} '${name}'` : `'${name}'`;
}

function fail(
  Kind: TypeErrorConstructor | RangeErrorConstructor,
  name: string,
  what: string | undefined,
  rule: string,
  value: unknown,
): never {
  throw new Kind(`${label(name, what)} must be ${rule}: received ${describeValue(value)}`);
}

/**
 * Checks an options argument: undefined (no options) or a plain object whose keys are all known.
 *
 * @param value The argument as the caller passed it.
 * @param what The API that takes it, for messages: `"ThreadPool"`, `"Queue.get()"`.
 * @param known The names of its options.
 * @param hint What a right call looks like, added to the message for a value that is no object:
 * `"pass { timeoutMs: 1000 }"`.
 * @returns The options, or an empty object when there are none.
 * @throws {TypeError} When the value is not an object, or has a key that no option has; the
 * message names the key and the nearest known one.
 */
export function checkOptions<T extends object>(
  value: T | undefined,
  what: string,
  known: readonly (keyof T & string)[],
  hint?: string,
): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${what} options must be an object: received ${describeValue(value)}${
        hint ? `; ${hint}` : ""
      }`,
    );
  }
  checkKnownKeys(value, what, known);
  return value;
}

/**
 * Checks that an object has no key outside `known`.
 *
 * @param value The object.
 * @param what Whose options they are, for messages.
 * @param known The names of its options.
 * @throws {TypeError} When a key is unknown; the message names it and the nearest known one.
 */
export function checkKnownKeys(value: object, what: string, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const python = Object.hasOwn(pythonNames, key) && known.includes(pythonNames[key])
      ? pythonNames[key]
      : undefined;
    const near = python ?? nearestName(key, known);
    throw new TypeError(
      `${what} has no option '${key}': ${
        python
          ? `did you mean '${python}', as multiproc names Python's '${key}'?`
          : near
          ? `did you mean '${near}'?`
          : `its options are ${known.map((k) => `'${k}'`).join(", ")}`
      }`,
    );
  }
}

// Python's names for options that multiproc spells otherwise, beyond what spelling finds.
const pythonNames: Record<string, string> = {
  processes: "size",
  max_workers: "size",
  max_tasks_per_child: "maxTasksPerChild",
  timeout: "timeoutMs",
  return_when: "returnWhen",
};

/**
 * The known name nearest to `name` in spelling, when one is near enough to be a likely typo.
 *
 * @param name The unknown name.
 * @param known The names to choose from.
 * @returns The nearest one, or undefined when none is close.
 */
export function nearestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // A third of the name may be wrong, at least two letters, as in `argz` or `tiemoutMs`.
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** Levenshtein distance, with a swap of two neighbouring letters counted as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[i].push(j);
        continue;
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2][j - 2] + 1);
      }
      rows[i].push(d);
    }
  }
  return rows[a.length][b.length];
}

/** Bounds of {@linkcode checkInteger}. */
export interface IntegerRule {
  /** The smallest value allowed; 0 when omitted. */
  min?: number;
  /** The largest value allowed; none when omitted. */
  max?: number;
  /** What one unit is, for messages: `"megabytes"`. */
  unit?: string;
  /** The API that takes the value, for messages. */
  what?: string;
}

/**
 * Checks an integer option.
 *
 * @param value The value, or undefined when the option was not given.
 * @param name The option's name.
 * @param rule Its bounds.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer or lies outside the bounds.
 */
export function checkInteger(
  value: unknown,
  name: string,
  rule: IntegerRule = {},
): number | undefined {
  if (value === undefined) return undefined;
  const { min = 0, max, unit, what } = rule;
  const kind = min === 1
    ? "a positive integer"
    : min === 0
    ? "a non-negative integer"
    : `an integer of at least ${min}`;
  const text = `${kind}${unit ? ` of ${unit}` : ""}${max === undefined ? "" : ` up to ${max}`}`;
  if (typeof value !== "number") fail(TypeError, name, what, text, value);
  if (!Number.isInteger(value) || value < min || (max !== undefined && value > max)) {
    fail(RangeError, name, what, text, value);
  }
  return value;
}

/**
 * Checks a positive integer option, such as a pool's `size`.
 *
 * @param value The value, or undefined.
 * @param name The option's name.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer of at least 1.
 */
export function checkPositiveInteger(
  value: unknown,
  name: string,
  what?: string,
): number | undefined {
  return checkInteger(value, name, { min: 1, what });
}

/**
 * Checks a duration in milliseconds, such as `timeoutMs`: any non-negative number, `Infinity`
 * (no limit) included.
 *
 * @param value The value, or undefined.
 * @param name The option's name.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is negative or NaN.
 */
export function checkMilliseconds(
  value: unknown,
  name: string,
  what?: string,
): number | undefined {
  if (value === undefined) return undefined;
  const rule = "a non-negative number of milliseconds (Infinity for no limit)";
  if (typeof value !== "number") fail(TypeError, name, what, rule, value);
  if (Number.isNaN(value) || value < 0) fail(RangeError, name, what, rule, value);
  return value;
}

/**
 * Checks a `timeoutMs` option or argument; see {@linkcode checkMilliseconds}.
 *
 * @param value The value, or undefined.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is negative or NaN.
 */
export function checkTimeoutMs(value: unknown, what?: string): number | undefined {
  return checkMilliseconds(value, "timeoutMs", what);
}

/**
 * A check of an option's type: the value when it passes (or undefined when not given), else a
 * `TypeError` that says what the option must be.
 */
export type TypeCheck<T> = (
  value: unknown,
  name: string,
  what?: string,
  optional?: boolean,
) => T | undefined;

/** Makes a {@linkcode TypeCheck} from a test and the words for what passes it. */
function typeCheck<T>(test: (value: unknown) => value is T, rule: string): TypeCheck<T> {
  return (value, name, what, optional = true) => {
    if ((optional && value === undefined) || test(value)) return value as T | undefined;
    fail(TypeError, name, what, rule, value);
  };
}

/**
 * Checks a boolean option. `optional` (true by default) says whether undefined stands for "not
 * given"; pass false for a property being set.
 *
 * @throws {TypeError} When it is not a boolean.
 */
export const checkBoolean: TypeCheck<boolean> = typeCheck(
  (value): value is boolean => typeof value === "boolean",
  "a boolean",
);

/**
 * Checks a string option, such as a `name`; `optional` as for {@linkcode checkBoolean}.
 *
 * @throws {TypeError} When it is not a string.
 */
export const checkString: TypeCheck<string> = typeCheck(
  (value): value is string => typeof value === "string",
  "a string",
);

/**
 * Checks an array option, such as `args`; `optional` as for {@linkcode checkBoolean}.
 *
 * @throws {TypeError} When it is not an array.
 */
export const checkArray: TypeCheck<readonly unknown[]> = typeCheck(
  (value): value is readonly unknown[] => Array.isArray(value),
  "an array",
);

/**
 * Checks an option that takes one of a few values.
 *
 * @param value The value, or undefined.
 * @param name The option's name.
 * @param allowed The values it may take.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is none of them.
 */
export function checkOneOf<T extends string>(
  value: unknown,
  name: string,
  allowed: readonly T[],
  what?: string,
): T | undefined {
  if (value === undefined || (allowed as readonly unknown[]).includes(value)) {
    return value as T | undefined;
  }
  const list = allowed.map((a) => `'${a}'`);
  const rule = list.length === 2 ? `${list[0]} or ${list[1]}` : `one of ${list.join(", ")}`;
  fail(TypeError, name, what, rule, value);
}

/**
 * Checks a `module` option: a URL or a path.
 *
 * @param value The value, or undefined.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is neither a URL nor a non-empty string.
 */
export function checkModule(value: unknown, what?: string): string | URL | undefined {
  if (value === undefined || value instanceof URL) return value;
  if (typeof value === "string" && value !== "") return value;
  fail(TypeError, "module", what, "a URL or a path of a module", value);
}

/**
 * Checks a `signal` option.
 *
 * @param value The value, or undefined.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not an `AbortSignal`.
 */
export function checkSignal(value: unknown, what?: string): AbortSignal | undefined {
  if (value === undefined || value instanceof AbortSignal) return value;
  fail(TypeError, "signal", what, "an AbortSignal", value);
}

/**
 * The largest `maxHeapMb`: 4 TiB, more than any machine gives one heap, and small enough that V8
 * reads the flag as written.
 */
export const MAX_HEAP_MB = 4 * 1024 * 1024;

/**
 * Checks a `maxHeapMb` option.
 *
 * @param value The value, or undefined.
 * @param what The API that takes it, for messages.
 * @returns The value, or undefined.
 * @throws {TypeError} When it is not a number.
 * @throws {RangeError} When it is not an integer from 1 to {@linkcode MAX_HEAP_MB}.
 */
export function checkMaxHeapMb(value: unknown, what?: string): number | undefined {
  return checkInteger(value, "maxHeapMb", { min: 1, max: MAX_HEAP_MB, unit: "megabytes", what });
}

// ---------------------------------------------------------------------------------------------
// Timers of any length

/** The longest delay that `setTimeout` takes as given; a longer one fires at once. */
const MAX_DELAY = 2 ** 31 - 1;

/** A timer started by {@linkcode setLongTimeout}. */
export interface LongTimeout {
  /** Stops the timer; the callback does not run. Safe to call more than once, or after it ran. */
  clear(): void;
}

/**
 * Runs `callback` once after `ms` milliseconds, however long: `Infinity` never runs it, and a
 * delay past `setTimeout`'s limit (2**31 - 1 ms) is waited out in steps rather than firing at once.
 *
 * @param callback What to run.
 * @param ms The delay: any non-negative number, or `Infinity`.
 * @param onTimer Called with each underlying timer as it is made, for example to unref it.
 * @returns The timer, to clear.
 * @throws {RangeError} When `ms` is negative or NaN.
 */
export function setLongTimeout(
  callback: () => void,
  ms: number,
  onTimer?: (timer: ReturnType<typeof setTimeout>) => void,
): LongTimeout {
  if (Number.isNaN(ms) || ms < 0) {
    throw new RangeError(`A delay must be a non-negative number of milliseconds: received ${ms}`);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let cleared = false;
  if (ms !== Infinity) {
    const due = performance.now() + ms;
    const arm = (left: number) => {
      timer = setTimeout(() => {
        const rest = due - performance.now();
        if (rest > 0 && left > MAX_DELAY) arm(rest);
        else if (!cleared) callback();
      }, Math.min(left, MAX_DELAY));
      onTimer?.(timer);
    };
    arm(ms);
  }
  return {
    clear() {
      cleared = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}

/**
 * A promise that resolves after `ms` milliseconds, however long, with the timer to clear it.
 *
 * @param ms The delay: any non-negative number, or `Infinity` (never resolves).
 * @returns The promise and its timer. A cleared timer leaves the promise pending.
 * @throws {RangeError} When `ms` is negative or NaN.
 */
export function longDelay(ms: number): { done: Promise<void>; timer: LongTimeout } {
  let timer!: LongTimeout;
  const done = new Promise<void>((resolve) => timer = setLongTimeout(resolve, ms));
  return { done, timer };
}

/**
 * Refuses an argument past the options, as Python's `get(True, 5)`, `put(item, True, 5)` or
 * `acquire(True, 0.5)` would pass one: dropped, it would make the call wait for ever.
 *
 * @param what The call, for the message.
 * @param args The call's arguments.
 * @param count How many arguments the call takes.
 * @throws {TypeError} When there are more, with the call that means what Python meant.
 */
export function checkNoArgumentAfter(what: string, args: ArrayLike<unknown>, count: number): void {
  if (args.length <= count) return;
  const extra = args[count];
  const hint = typeof extra === "number" && Number.isFinite(extra) && extra >= 0
    ? `{ timeoutMs: ${extra * 1000} } to wait up to ${extra} s`
    : "{ blocking, timeoutMs }";
  throw new TypeError(
    `${what} takes no argument after its options: received ${
      describeValue(extra)
    }; pass ${hint}, as the timeout is an option, in milliseconds`,
  );
}
