/**
 * A FIFO of records bound for one partition, with their total size. Shifting moves
 * a head index instead of copying the array (Array.prototype.shift is O(n) on the
 * large arrays a busy partition builds up).
 */
export class PartitionQueue<T extends { size: number }> {
  #items: (T | undefined)[] = [];
  #head = 0;
  /** Sum of `size` over the queued items. */
  bytes = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
    this.bytes += item.size;
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): T | undefined {
    const item = this.#items[this.#head];
    if (item === undefined) return undefined;
    this.#items[this.#head++] = undefined;
    this.bytes -= item.size;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }

  /** Removes and returns everything, oldest first. */
  drain(): T[] {
    const out = this.#items.slice(this.#head) as T[];
    this.#items = [];
    this.#head = 0;
    this.bytes = 0;
    return out;
  }
}
