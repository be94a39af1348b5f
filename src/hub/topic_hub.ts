/**
 * Broadcast fan-out for one topic: one Kafka reader follows the tail of every
 * partition into shared windows, and every broadcast subscriber is a cursor into
 * them. Subscribers that fall behind a window (or start before it: earliest, an
 * offset, a timestamp) read from Kafka through a catch-up reader from a bounded pool
 * until the window covers them again.
 *
 * The reader never waits for a subscriber, and a subscriber without credit pauses
 * alone. Positions belong to the cursors, so a broker restart, a rejoin or a crash
 * of a reader cannot move them.
 */
import type { KafkaCatalog, KafkaSource, SourceHandle } from "../kafka/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { SkippedFrame } from "../protocol/mod.ts";
import type { Cursor, CursorHub } from "./cursor.ts";
import { HubRecord, PartitionWindow, type WindowLimits } from "./window.ts";

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

export interface TopicHubDeps {
  source: KafkaSource;
  catalog: Pick<KafkaCatalog, "endOffsets" | "earliestOffsets">;
  pool: ReaderPool;
  windowLimits: WindowLimits;
  /** A Kafka group id for one reader (a group of one member: kafkajs has no manual assignment). */
  groupId(): string;
  log: Logger;
}

/** How often a subscriber whose socket is full is checked for room. */
const DRAIN_POLL_MS = 25;

export class TopicHub implements CursorHub {
  readonly cursors = new Set<Cursor>();
  readonly #windows: PartitionWindow[] = [];
  #reader?: SourceHandle;
  readonly #catchUps = new Map<Cursor, { handle?: SourceHandle; done: boolean }>();
  readonly #blocked = new Set<Cursor>();
  #drainTimer?: ReturnType<typeof setInterval>;
  #pumpTimer?: ReturnType<typeof setTimeout>;
  #stopped = false;

  constructor(readonly topic: string, readonly clientTopic: string, readonly deps: TopicHubDeps) {}

  /** Starts following the tail: from the end of every partition as it is now. */
  async start(): Promise<void> {
    const ends = await this.deps.catalog.endOffsets(this.topic);
    for (const [p, o] of Object.entries(ends)) {
      this.#windows[Number(p)] = new PartitionWindow(Number(p), Number(o), this.deps.windowLimits);
    }
    this.#reader = await this.deps.source.open(
      {
        topic: this.topic,
        mode: "broadcast",
        groupId: this.deps.groupId(),
        from: { kind: "latest" },
        startOffsets: ends,
        newPartitionsFromStart: true,
      },
      (d) => {
        let w = this.#windows[d.partition];
        // A partition the hub did not know: created after it started, so it holds only new records.
        if (!w) w = this.#windows[d.partition] = new PartitionWindow(d.partition, 0, this.deps.windowLimits);
        if (w.append(new HubRecord(d, this.clientTopic))) this.#schedulePump();
        return Promise.resolve(!this.#stopped);
      },
    );
  }

  window(partition: number): PartitionWindow | undefined {
    return this.#windows[partition];
  }

  *windows(): Iterable<PartitionWindow> {
    for (const w of this.#windows) if (w) yield w;
  }

  get windowBytes(): number {
    let n = 0;
    for (const w of this.windows()) n += w.bytes;
    return n;
  }

  get catchUpReaders(): number {
    return this.#catchUps.size;
  }

  get blockedCursors(): number {
    return this.#blocked.size;
  }

  add(cursor: Cursor): void {
    this.cursors.add(cursor);
    cursor.pump();
  }

  async remove(cursor: Cursor): Promise<void> {
    cursor.stop();
    this.cursors.delete(cursor);
    this.#blocked.delete(cursor);
    await this.#endCatchUp(cursor);
  }

  /** New records reach every cursor once per task, not once per record. */
  #schedulePump(): void {
    this.#pumpTimer ??= setTimeout(() => {
      this.#pumpTimer = undefined;
      for (const c of this.cursors) c.pump();
    }, 0);
  }

  blocked(cursor: Cursor): void {
    this.#blocked.add(cursor);
    this.#drainTimer ??= setInterval(() => {
      for (const c of [...this.#blocked]) {
        if (c.hooks.bufferedAmount() < c.opts.maxBufferedBytes) {
          this.#blocked.delete(c);
          c.drained();
        }
      }
      if (this.#blocked.size === 0) {
        clearInterval(this.#drainTimer);
        this.#drainTimer = undefined;
      }
    }, DRAIN_POLL_MS);
  }

  needsCatchUp(cursor: Cursor): void {
    if (this.#catchUps.has(cursor) || this.#stopped) return;
    const entry: { handle?: SourceHandle; done: boolean } = { done: false };
    this.#catchUps.set(cursor, entry);
    this.deps.pool.acquire(() => void this.#openCatchUp(cursor, entry));
  }

  async #openCatchUp(cursor: Cursor, entry: { handle?: SourceHandle; done: boolean }): Promise<void> {
    try {
      if (entry.done || cursor.stopped) return this.#releaseSlot(cursor, entry);
      await this.#skipDeleted(cursor);
      if (cursor.covered) return this.#releaseSlot(cursor, entry, true);
      const startOffsets: Record<string, string> = {};
      for (const w of this.windows()) startOffsets[String(w.partition)] = String(cursor.position(w));
      const handle = await this.deps.source.open(
        {
          topic: this.topic,
          mode: "broadcast",
          groupId: this.deps.groupId(),
          from: { kind: "offsets", offsets: startOffsets },
          startOffsets,
        },
        async (d) => {
          const ok = await cursor.catchUp(d);
          if (cursor.covered) void this.#endCatchUp(cursor, true); // the window serves it from here: no seam
          return ok;
        },
      );
      entry.handle = handle;
      if (entry.done) { // ended while it was opening: #endCatchUp left the slot and the reader to us
        this.deps.pool.release();
        await handle.stop();
      }
    } catch (e) {
      this.deps.log.warn(
        { topic: this.topic, err: (e as Error).message },
        "catch-up reader failed; will retry",
      );
      this.#releaseSlot(cursor, entry);
      setTimeout(() => cursor.pump(), 1000); // asks again if it is still behind
    }
  }

  /**
   * Records below the first offset Kafka still holds were deleted (retention): the cursor
   * is told, with the first offset available, and continues from there. Never silently.
   */
  async #skipDeleted(cursor: Cursor): Promise<void> {
    const earliest = await this.deps.catalog.earliestOffsets(this.topic);
    for (const w of this.windows()) {
      const first = Number(earliest[String(w.partition)] ?? 0);
      const pos = cursor.position(w);
      if (pos >= first) continue;
      const frame: SkippedFrame = {
        op: "skipped",
        sub: cursor.opts.sub,
        topic: this.clientTopic,
        partition: w.partition,
        from: String(pos),
        to: String(first),
        reason: "the records were deleted by Kafka's retention before this subscriber read them",
      };
      cursor.hooks.send(JSON.stringify(frame));
      cursor.positions.set(w.partition, first);
    }
  }

  #releaseSlot(cursor: Cursor, entry: { done: boolean }, pumpAfter = false): void {
    entry.done = true;
    if (this.#catchUps.get(cursor) === entry) this.#catchUps.delete(cursor);
    this.deps.pool.release();
    if (pumpAfter) cursor.pump();
  }

  async #endCatchUp(cursor: Cursor, pumpAfter = false): Promise<void> {
    const entry = this.#catchUps.get(cursor);
    if (!entry || entry.done) return;
    entry.done = true;
    this.#catchUps.delete(cursor);
    const handle = entry.handle;
    if (handle) {
      this.deps.pool.release();
      await handle.stop();
    } // else: still opening; #openCatchUp sees `done`, stops what it opened and releases the slot
    if (pumpAfter) cursor.pump();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#pumpTimer);
    clearInterval(this.#drainTimer);
    this.#drainTimer = undefined;
    await Promise.all([...this.cursors].map((c) => this.remove(c)));
    await this.#reader?.stop();
  }
}
