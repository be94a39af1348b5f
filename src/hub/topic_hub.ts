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
import { CatchUpReaders, type ReaderPool } from "./catch_up.ts";
import type { Cursor, CursorHub } from "./cursor.ts";
import { HubRecord, PartitionWindow, type WindowLimits } from "./window.ts";

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
/** How often subscribers under the "disconnect" policy are checked for a stall. */
const STALL_POLL_MS = 100;

export class TopicHub implements CursorHub {
  readonly cursors = new Set<Cursor>();
  readonly #windows: PartitionWindow[] = [];
  #reader?: SourceHandle;
  readonly #catchUp: CatchUpReaders;
  readonly #blocked = new Set<Cursor>();
  #drainTimer?: ReturnType<typeof setInterval>;
  #pumpTimer?: ReturnType<typeof setTimeout>;
  #stallTimer?: ReturnType<typeof setInterval>;
  #reopenTimer?: ReturnType<typeof setTimeout>;
  #stopped = false;

  constructor(readonly topic: string, readonly clientTopic: string, readonly deps: TopicHubDeps) {
    this.#catchUp = new CatchUpReaders({
      topic,
      clientTopic,
      source: deps.source,
      pool: deps.pool,
      windows: () => this.windows(),
      groupId: deps.groupId,
      log: deps.log,
      skipDeleted: (cursors) => this.#skipDeleted(cursors),
    });
  }

  /** Starts following the tail: from the end of every partition as it is now. */
  async start(): Promise<void> {
    const ends = await this.deps.catalog.endOffsets(this.topic);
    for (const [p, o] of Object.entries(ends)) {
      this.#windows[Number(p)] = new PartitionWindow(Number(p), Number(o), this.deps.windowLimits);
    }
    await this.#openTail();
  }

  /** The tail reader, from where the windows are (a reopened one continues exactly there). */
  async #openTail(): Promise<void> {
    const startOffsets: Record<string, string> = {};
    for (const w of this.windows()) startOffsets[String(w.partition)] = String(w.next);
    this.#reader = await this.deps.source.open(
      {
        topic: this.topic,
        mode: "broadcast",
        groupId: this.deps.groupId(),
        from: { kind: "latest" },
        startOffsets,
        newPartitionsFromStart: true,
      },
      (d) => {
        let w = this.#windows[d.partition];
        // A partition the hub did not know: created after it started, so it holds only new records.
        if (!w) w = this.#windows[d.partition] = new PartitionWindow(d.partition, 0, this.deps.windowLimits);
        if (w.append(new HubRecord(d, this.clientTopic))) this.#schedulePump();
        return Promise.resolve(!this.#stopped);
      },
      { onFatal: (e) => this.#tailFailed(e) },
    );
  }

  /** The tail reader failed for good (kafkajs gave up): a new one continues where the windows are. */
  #tailFailed(e: Error): void {
    if (this.#stopped) return;
    this.deps.log.error({ topic: this.topic, err: e.message }, "hub reader failed; reopening it");
    const old = this.#reader;
    this.#reader = undefined;
    this.#reopenTimer = setTimeout(async () => {
      this.#reopenTimer = undefined;
      await old?.stop().catch(() => {});
      if (this.#stopped) return;
      await this.#openTail().catch((err) => this.#tailFailed(err as Error));
    }, 1000);
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
    return this.#catchUp.size;
  }

  get blockedCursors(): number {
    return this.#blocked.size;
  }

  /** The cursor receives from the next pump on, once it has begun (after "subscribed" went out). */
  add(cursor: Cursor): void {
    this.cursors.add(cursor);
    if (cursor.opts.stall) this.#watchStalls();
  }

  /** Runs while some cursor is under the "disconnect" policy. */
  #watchStalls(): void {
    this.#stallTimer ??= setInterval(() => {
      let any = false;
      const now = performance.now();
      for (const c of this.cursors) {
        if (!c.opts.stall) continue;
        any = true;
        c.checkStall(now);
      }
      if (!any) {
        clearInterval(this.#stallTimer);
        this.#stallTimer = undefined;
      }
    }, STALL_POLL_MS);
  }

  remove(cursor: Cursor): void {
    cursor.stop();
    this.cursors.delete(cursor);
    this.#blocked.delete(cursor);
    this.#catchUp.leave(cursor);
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
    if (!this.#stopped) this.#catchUp.need(cursor);
  }

  /**
   * Records below the first offset Kafka still holds were deleted (retention): each cursor
   * is told, with the first offset available, and continues from there. Never silently.
   */
  async #skipDeleted(cursors: Cursor[]): Promise<void> {
    const earliest = await this.deps.catalog.earliestOffsets(this.topic);
    for (const cursor of cursors) {
      if (cursor.stopped) continue;
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
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#pumpTimer);
    clearInterval(this.#drainTimer);
    this.#drainTimer = undefined;
    clearInterval(this.#stallTimer);
    this.#stallTimer = undefined;
    clearTimeout(this.#reopenTimer);
    for (const c of [...this.cursors]) this.remove(c);
    await this.#catchUp.stop();
    await this.#reader?.stop();
  }
}
