/**
 * A bounded cache of topic lookups, shared by every session.
 *
 * - Hits are synchronous (`peek`), so a publish to a known topic never waits.
 * - Several callers asking for the same unknown name share one lookup (single flight).
 * - Entries expire (`ttlMs`; "does not exist" answers sooner, `negativeTtlMs`, so a topic
 *   created later is found), and the least recently used entry goes once `maxEntries`
 *   is reached: a client trying random names cannot grow memory without bound.
 * - A failed lookup (Kafka unreachable) is not cached.
 */
export interface TopicCacheOptions {
  maxEntries: number;
  ttlMs: number;
  negativeTtlMs: number;
  now?: () => number;
}

interface Entry<T> {
  value: T | null;
  expires: number;
}

export class TopicCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inflight = new Map<string, Promise<T | null>>();
  readonly #now: () => number;

  constructor(
    readonly lookup: (name: string) => Promise<T | null>,
    readonly opts: TopicCacheOptions,
  ) {
    this.#now = opts.now ?? (() => performance.now());
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached answer: the value, null for "does not exist", undefined when unknown or expired. */
  peek(name: string): T | null | undefined {
    const e = this.#entries.get(name);
    if (!e) return undefined;
    if (e.expires <= this.#now()) {
      this.#entries.delete(name);
      return undefined;
    }
    // Re-insert: a Map iterates in insertion order, so the first key is the least recently used.
    this.#entries.delete(name);
    this.#entries.set(name, e);
    return e.value;
  }

  get(name: string): Promise<T | null> {
    const hit = this.peek(name);
    if (hit !== undefined) return Promise.resolve(hit);
    let pending = this.#inflight.get(name);
    if (!pending) {
      pending = this.lookup(name).then((value) => {
        this.#store(name, value);
        return value;
      }).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, pending);
    }
    return pending;
  }

  invalidate(name: string): void {
    this.#entries.delete(name);
  }

  #store(name: string, value: T | null): void {
    this.#entries.delete(name);
    while (this.#entries.size >= this.opts.maxEntries) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    const ttl = value === null ? this.opts.negativeTtlMs : this.opts.ttlMs;
    this.#entries.set(name, { value, expires: this.#now() + ttl });
  }
}
