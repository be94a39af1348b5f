/**
 * Catch-up readers: Kafka consumers that read for cursors behind a topic's windows,
 * until the windows cover them again. They come from a pool bounded across all topics;
 * cursors that need one at the same place (many browsers subscribing from the same
 * offset or time, or waiting in the pool's queue) share one.
 *
 * A reader reads every partition and drops what the window serves. So if a window later
 * evicts past a cursor's place on a partition the reader already went by, the reader
 * cannot give that cursor those records: the cursor gets a new reader from where it is.
 */
import type { Delivery, KafkaSource, SourceHandle } from "../kafka/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { Cursor } from "./cursor.ts";
import { HubRecord, type PartitionWindow } from "./window.ts";

/** Catch-up readers are Kafka consumers: a fixed number across all topics, handed out in turn. */
export class ReaderPool {
  #active = 0;
  readonly #queue: (() => void)[] = [];
  constructor(readonly max: number) {}

  get active(): number {
    return this.#active;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  acquire(start: () => void): void {
    if (this.#active < this.max) {
      this.#active++;
      start();
    } else this.#queue.push(start);
  }

  release(): void {
    const next = this.#queue.shift();
    if (next) next(); // the slot passes on
    else this.#active--;
  }
}

interface Reader {
  readonly cursors: Set<Cursor>;
  /** Where the reader starts, per partition. */
  readonly start: Map<number, number>;
  /** The offset after the last record all its cursors handled, per partition. */
  readonly next: Map<number, number>;
  handle?: SourceHandle;
  /** Holds a pool slot (false while queued). */
  slot: boolean;
  /** Cursors at exactly `start` may join until it begins opening. */
  joinable: boolean;
  done: boolean;
}

export interface CatchUpDeps {
  topic: string;
  clientTopic: string;
  source: KafkaSource;
  pool: ReaderPool;
  windows(): Iterable<PartitionWindow>;
  groupId(): string;
  log: Logger;
  /** Before a reader starts: tell cursors about records retention deleted, and move them past. */
  skipDeleted(cursors: Cursor[]): Promise<void>;
}

export class CatchUpReaders {
  readonly #readers = new Set<Reader>();
  readonly #of = new Map<Cursor, Reader>();
  readonly #retries = new Set<ReturnType<typeof setTimeout>>();
  /** Readers stopping (their consumers leaving Kafka): stop() waits for them. */
  readonly #ending = new Set<Promise<void>>();
  #stopped = false;

  constructor(readonly deps: CatchUpDeps) {}

  /** Readers open or waiting for a slot. */
  get size(): number {
    return this.#readers.size;
  }

  /** The cursor is behind a window: give it a reader, unless the one it has can still serve it. */
  need(cursor: Cursor): void {
    if (this.#stopped || cursor.stopped) return;
    const current = this.#of.get(cursor);
    if (current) {
      if (!this.#passed(current, cursor)) return;
      this.leave(cursor); // the reader went by records this cursor still needs
    }
    const place = this.#placeOf(cursor);
    for (const r of this.#readers) {
      if (r.joinable && !r.done && samePlace(r.start, place)) {
        r.cursors.add(cursor);
        this.#of.set(cursor, r);
        return;
      }
    }
    const reader: Reader = {
      cursors: new Set([cursor]),
      start: place,
      next: new Map(),
      slot: false,
      joinable: true,
      done: false,
    };
    this.#readers.add(reader);
    this.#of.set(cursor, reader);
    this.deps.pool.acquire(() => {
      if (reader.done) return this.deps.pool.release(); // ended while it waited: the slot passes on
      reader.slot = true;
      void this.#open(reader);
    });
  }

  /** The cursor no longer needs its reader (covered, or gone). A reader with no cursor left stops. */
  leave(cursor: Cursor): void {
    const r = this.#of.get(cursor);
    if (!r) return;
    this.#of.delete(cursor);
    r.cursors.delete(cursor);
    if (r.cursors.size === 0) {
      const ending = this.#end(r).finally(() => this.#ending.delete(ending));
      this.#ending.add(ending);
    }
  }

  #placeOf(cursor: Cursor): Map<number, number> {
    const place = new Map<number, number>();
    for (const w of this.deps.windows()) place.set(w.partition, cursor.position(w));
    return place;
  }

  /** The reader is past this cursor's place on a partition the window no longer covers for it. */
  #passed(r: Reader, cursor: Cursor): boolean {
    for (const w of this.deps.windows()) {
      const pos = cursor.position(w);
      if (w.covers(pos)) continue;
      const at = r.next.get(w.partition) ?? r.start.get(w.partition) ?? 0;
      if (at > pos) return true;
    }
    return false;
  }

  async #open(r: Reader): Promise<void> {
    r.joinable = false; // a cursor joining after this would miss skipDeleted below
    try {
      if (r.done) return;
      await this.deps.skipDeleted([...r.cursors]);
      for (const c of [...r.cursors]) {
        if (c.covered) {
          this.leave(c);
          c.pump();
        }
      }
      if (r.done) return;
      // Every cursor here was at `start` and moved past deleted records alike: start where the first one is.
      const first = [...r.cursors][0];
      r.start.clear();
      for (const w of this.deps.windows()) r.start.set(w.partition, first.position(w));
      const startOffsets = Object.fromEntries([...r.start].map(([p, o]) => [String(p), String(o)]));
      const handle = await this.deps.source.open(
        {
          topic: this.deps.topic,
          mode: "broadcast",
          groupId: this.deps.groupId(),
          // The reader starts at startOffsets; should retention delete them while it reads, kafkajs
          // resets it to `from`: earliest, never past records, and the offset jump is reported below.
          from: { kind: "earliest" },
          startOffsets,
          newPartitionsFromStart: true,
        },
        (d) => this.#deliver(r, d),
        { onFatal: (e) => void this.#failed(r, e) },
      );
      r.handle = handle;
      if (r.done) await handle.stop(); // ended while it was opening
    } catch (e) {
      await this.#failed(r, e);
    }
  }

  async #deliver(r: Reader, d: Delivery): Promise<boolean> {
    if (r.done) return false;
    const record = new HubRecord(d, this.deps.clientTopic); // encoded once for all its cursors
    const from = r.next.get(d.partition) ?? r.start.get(d.partition) ?? 0;
    // A jump in offsets is usually transaction markers or compaction; it may be retention that
    // deleted what the reader was about to read (kafkajs then resets it): check, and say so.
    if (record.offset > from + 1) await this.deps.skipDeleted([...r.cursors]);
    const batchNext = d.batchNext === undefined ? undefined : Number(d.batchNext);
    const shared = r.cursors.size > 1;
    const cursors = [...r.cursors];
    const results = await Promise.all(
      cursors.map((c) =>
        c.catchUp(record, { current: () => this.#of.get(c) === r, from, batchNext, shared })
      ),
    );
    r.next.set(d.partition, Math.max(record.offset + 1, batchNext ?? 0));
    cursors.forEach((c, i) => {
      if (this.#of.get(c) !== r) return;
      if (c.stopped || results[i] === "detach") this.leave(c); // it asks again when it can take records
      else if (results[i] === "passed") {
        this.leave(c);
        this.need(c); // a reader from its own place
      } else if (c.covered) { // the window serves it from here: no seam
        this.leave(c);
        c.pump();
      }
    });
    return !r.done;
  }

  /** The reader failed for good: its cursors get new readers in a moment. */
  async #failed(r: Reader, e: unknown): Promise<void> {
    this.deps.log.warn(
      { topic: this.deps.topic, err: (e as Error)?.message },
      "catch-up reader failed; will retry",
    );
    const cursors = [...r.cursors];
    for (const c of cursors) this.leave(c);
    await this.#end(r);
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#retries.delete(timer);
      for (const c of cursors) c.pump(); // each asks again if it is still behind
    }, 1000);
    this.#retries.add(timer);
  }

  async #end(r: Reader): Promise<void> {
    if (r.done) return;
    r.done = true;
    this.#readers.delete(r);
    for (const c of r.cursors) this.#of.delete(c);
    r.cursors.clear();
    if (r.slot) this.deps.pool.release(); // else it still waits in the pool's queue, which skips it
    await r.handle?.stop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#retries) clearTimeout(t);
    this.#retries.clear();
    await Promise.all([...[...this.#readers].map((r) => this.#end(r)), ...this.#ending]);
  }
}

function samePlace(a: Map<number, number>, b: Map<number, number>): boolean {
  if (a.size !== b.size) return false;
  for (const [p, o] of a) if (b.get(p) !== o) return false;
  return true;
}
