/**
 * A double-ended queue on a ring buffer: O(1) at both ends, where `Array.prototype.shift()` is
 * O(n) and would make a long task queue quadratic.
 *
 * @module
 */

/** A ring buffer that grows by doubling. */
export class Deque<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #length = 0;

  /** The number of items. */
  get length(): number {
    return this.#length;
  }

  /** Adds an item at the back. */
  push(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#length) & (this.#items.length - 1)] = item;
    this.#length++;
  }

  /** Adds an item at the front. */
  unshift(item: T): void {
    if (this.#length === this.#items.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#items.length - 1);
    this.#items[this.#head] = item;
    this.#length++;
  }

  /** Removes and returns the front item. */
  shift(): T | undefined {
    if (this.#length === 0) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#length--;
    return item;
  }

  /** Removes and returns the back item. */
  pop(): T | undefined {
    if (this.#length === 0) return undefined;
    const at = (this.#head + this.#length - 1) & (this.#items.length - 1);
    const item = this.#items[at];
    this.#items[at] = undefined;
    this.#length--;
    return item;
  }

  /** The item at `index` from the front, without removing it. */
  at(index: number): T | undefined {
    if (index < 0 || index >= this.#length) return undefined;
    return this.#items[(this.#head + index) & (this.#items.length - 1)];
  }

  /** Removes the first occurrence of `item`; O(n), for the rare removal from the middle. */
  remove(item: T): boolean {
    for (let i = 0; i < this.#length; i++) {
      if (this.at(i) !== item) continue;
      const mask = this.#items.length - 1;
      for (let j = i; j < this.#length - 1; j++) {
        this.#items[(this.#head + j) & mask] = this.#items[(this.#head + j + 1) & mask];
      }
      this.#items[(this.#head + this.#length - 1) & mask] = undefined;
      this.#length--;
      return true;
    }
    return false;
  }

  /** Removes every item and returns them, front first. */
  drain(): T[] {
    const items: T[] = [];
    while (this.#length > 0) items.push(this.shift()!);
    return items;
  }

  #grow(): void {
    const items: (T | undefined)[] = new Array(this.#items.length * 2);
    for (let i = 0; i < this.#length; i++) items[i] = this.at(i);
    this.#items = items;
    this.#head = 0;
  }
}
