/**
 * A bounded cache of topic lookups, shared by every session.
 *
 * - Hits are synchronous (`peek`), so a publish to a known topic never waits.
 * - Several callers asking for the same unknown name share one lookup (single flight).
 * - Entries expire (`ttlMs`; "does not exist" answers sooner, `negativeTtlMs`, so a topic
 *   created later is found), and once `maxEntries` is reached an entry not used since it
 *   was last considered goes (second chance, an LRU approximation that costs a hit only a
 *   flag write): a client trying random names cannot grow memory, nor push out topics in use.
 * - A found topic whose entry expired is still answered from the cache while one
 *   lookup refreshes it (for up to another `ttlMs`), so busy topics never stall on a
 *   refresh.
 * - A failed lookup (Kafka unreachable) is not cached.
 */
export interface TopicCacheOptions<T> {
  maxEntries: number;
  ttlMs: number;
  negativeTtlMs: number;
  /** A TTL for this answer instead of ttlMs (e.g. shorter for limits that could not be read). */
  ttlFor?: (value: T) => number | undefined;
  now?: () => number;
}

interface Entry<T> {
  value: T | null;
  expires: number;
  /** Used since eviction last passed over it. */
  used: boolean;
}

export class TopicCache<T> {
  readonly #entries = new Map<string, Entry<T>>();
  readonly #inflight = new Map<string, Promise<T | null>>();
  readonly #now: () => number;

  constructor(
    readonly lookup: (name: string) => Promise<T | null>,
    readonly opts: TopicCacheOptions<T>,
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
    const now = this.#now();
    if (e.expires <= now) {
      if (e.value === null || e.expires + this.opts.ttlMs <= now) {
        this.#entries.delete(name);
        return undefined;
      }
      void this.#lookUp(name).catch(() => {}); // stale but usable: refresh behind the caller's back
    }
    e.used = true;
    return e.value;
  }

  get(name: string): Promise<T | null> {
    const hit = this.peek(name);
    if (hit !== undefined) return Promise.resolve(hit);
    return this.#lookUp(name);
  }

  #lookUp(name: string): Promise<T | null> {
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
    // A Map iterates in insertion order: the oldest first. A used one moves to the back, unused.
    while (this.#entries.size >= this.opts.maxEntries) {
      const [oldest, entry] = this.#entries.entries().next().value!;
      this.#entries.delete(oldest);
      if (entry.used) {
        entry.used = false;
        this.#entries.set(oldest, entry);
      }
    }
    const ttl = value === null ? this.opts.negativeTtlMs : this.opts.ttlFor?.(value) ?? this.opts.ttlMs;
    this.#entries.set(name, { value, expires: this.#now() + ttl, used: false });
  }
}
