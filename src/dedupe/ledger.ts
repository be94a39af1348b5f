/**
 * Exactly-once publishing: decides, for each publish that carries (clientId, seq),
 * whether to write it, and remembers where each was written.
 *
 * Without HA the table lives in memory only: a resend after a reconnect to the same
 * bridge is answered from it, and a restart forgets it (at-least-once across restarts).
 *
 * With HA every transaction also writes, per client in it, the positions it wrote (a
 * delta) to the dedupe log, a compacted topic, in the same transaction as the records, so
 * they are in Kafka exactly when the records are; deltas wholly below a client's floor are
 * retired with tombstones. Every node follows the log. A node that takes
 * over first fences the old live (its open transaction is aborted), then writes a
 * barrier and reads up to it: from then on its table holds every committed position.
 * The same happens after a write whose outcome is unknown: until the barrier is read,
 * sequenced publishes are refused (retryable), never guessed.
 */
import type { Companion, OutgoingRecord, PartitionBatch, RecordPosition } from "../kafka/types.ts";
import { barrierKey, decodeRecord, deltaKey, encodeBarrier, encodeWindow, PLACEHOLDER_KEY } from "./codec.ts";
import type { DedupeTable, WrittenAt } from "./table.ts";

export type Decision =
  | { kind: "write" }
  | { kind: "written"; at: WrittenAt }
  /** An earlier copy of this seq is still being written: this one is not written. */
  | { kind: "in_flight" }
  /** The table is being brought up to date from the log: nothing is written now. */
  | { kind: "rebuilding" };

export interface LedgerOptions {
  node: string;
  /** A live mark read back from the log (any node's; see src/ha/live_marks.ts). */
  onLiveMark?: (node: string, epoch: number, seq: number, writtenAt: number) => void;
  /** HA: the dedupe log's topic. Unset: memory only. */
  logTopic?: string;
  /** While the barrier is not read back, onSlowRebuild is told this often. */
  rebuildTimeoutMs: number;
  onSlowRebuild?(waitedMs: number): void;
  /** The barrier was read back `waitedMs` after it was written: sequenced publishes are taken again. */
  onRebuilt?(waitedMs: number): void;
  epoch(): number;
  now?: () => number;
  onUnverifiable?(reason: "below_window" | "forgotten"): void;
  onUnreadable?(why: string): void;
}

const key = (clientId: string, seq: number) => `${clientId}\u0000${seq}`;
const encoder = new TextEncoder();

export class DedupeLedger {
  readonly #inFlight = new Set<string>();
  readonly #now: () => number;
  /** HA: true until a barrier is read after activation, and again after an unknown fate. */
  #stale: boolean;
  /** Resolved when the table stops being current: the held follower reads on. */
  #whenStale?: { promise: Promise<void>; resolve(): void };
  /** The offset after this node's last companion records known committed (the log's partition 0). */
  #ownCommittedEnd?: string;
  /** The follower, once it runs (app.ts): the ledger moves it past its own committed writes. */
  follower?: { skipTo(partition: number, offset: string): Promise<void> };
  /** The nonce of the barrier this node waits to read back, since its latest activation. */
  #barrier?: string;
  #barrierWrittenAt = 0;
  #rebuildTimer?: ReturnType<typeof setInterval>;
  /** Names this process's deltas apart from every other writer's, past and future. */
  readonly #deltaPrefix = crypto.randomUUID().slice(0, 8);
  #deltas = 0;

  constructor(readonly table: DedupeTable, readonly opts: LedgerOptions) {
    this.companion.committed = this.#companionCommitted;
    this.companion.placeholder = (batches) => {
      const topic = this.opts.logTopic;
      if (topic === undefined || !batches.some((b) => b.records.some((r) => r.sequence))) return undefined;
      return {
        topic,
        partition: 0,
        records: [{
          topic,
          partition: 0,
          key: encoder.encode(PLACEHOLDER_KEY),
          value: new Uint8Array(),
          tombstone: true,
          headers: {},
        }],
      };
    };
    this.#now = opts.now ?? (() => Date.now());
    this.#stale = opts.logTopic !== undefined;
  }

  get rebuilding(): boolean {
    return this.#stale;
  }

  /** HA: this node stopped serving (a backup's table only follows the log). */
  standBy(): void {
    const wasCurrent = !this.#stale;
    this.#markStale();
    if (wasCurrent) this.#skipOwnWrites();
  }

  #markStale(): void {
    this.#stale = true;
    this.#barrier = undefined; // a barrier written before this point proves nothing now
    this.#whenStale?.resolve();
    this.#whenStale = undefined;
  }

  /**
   * The follower's hold: while this node's table is current (a live after its barrier), its own
   * writes are all it could read, and it has them, so the follower waits instead of reading them
   * back (that cost a tenth of HA throughput). When the table goes stale the follower reads on,
   * first skipping to just after this node's last companion records known committed: what lies
   * before is in the table; what follows (a transaction whose outcome is unknown) is read.
   */
  hold(): Promise<void> | undefined {
    if (this.#stale) return undefined;
    if (!this.#whenStale) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#whenStale = { promise, resolve };
    }
    return this.#whenStale.promise;
  }

  #skipOwnWrites(): void {
    const end = this.#ownCommittedEnd;
    if (end === undefined) return;
    this.#ownCommittedEnd = undefined; // once: after it, the follower is past it
    void this.follower?.skipTo(0, end).catch(() => {}); // a failed skip only means a longer read
  }

  /** Called for each sequenced publish, in arrival order; "write" marks it in flight. */
  decide(clientId: string, seq: number, acked: number | undefined): Decision {
    if (this.#stale) return { kind: "rebuilding" };
    if (this.#inFlight.has(key(clientId, seq))) return { kind: "in_flight" };
    const found = this.table.lookup(clientId, seq, acked, this.#now());
    if (found.kind === "written") return found;
    if (found.kind === "unverifiable") this.opts.onUnverifiable?.(found.reason);
    this.#inFlight.add(key(clientId, seq));
    return { kind: "write" };
  }

  /** The "write" decided was not handed to the sink after all (refused before it). */
  abandon(clientId: string, seq: number): void {
    this.#inFlight.delete(key(clientId, seq));
  }

  /** The sink's onSequencedFate. */
  fate(record: OutgoingRecord, fate: RecordPosition | "not_written" | "unknown"): void {
    const { clientId, seq } = record.sequence!;
    this.#inFlight.delete(key(clientId, seq));
    if (fate === "not_written") return;
    if (fate === "unknown") {
      // HA: the log will tell, once the next activation reads its barrier. Memory only: a
      // resend is written again (the docs say so).
      if (this.opts.logTopic !== undefined) {
        const wasCurrent = !this.#stale;
        this.#markStale();
        if (wasCurrent) this.#skipOwnWrites();
      }
      return;
    }
    this.table.written(clientId, seq, {
      topic: fate.topic,
      partition: fate.partition,
      offset: Number(fate.offset),
      epoch: this.opts.epoch(),
    }, this.#now());
  }

  /**
   * HA: for the same transaction, per client in it, a delta with this request's positions
   * (and the client's floor), and tombstones for its deltas now wholly below the floor.
   */
  readonly companion: Companion = (batches, bases) => {
    const topic = this.opts.logTopic;
    if (topic === undefined) return [];
    const epoch = this.opts.epoch();
    const added = new Map<string, Map<number, WrittenAt>>();
    batches.forEach((b, i) => {
      const base = Number(bases[i]);
      b.records.forEach((r, j) => {
        if (!r.sequence) return;
        let positions = added.get(r.sequence.clientId);
        if (!positions) added.set(r.sequence.clientId, positions = new Map());
        positions.set(r.sequence.seq, { topic: b.topic, partition: b.partition, offset: base + j, epoch });
      });
    });
    if (added.size === 0) return [];
    const now = this.#now();
    const records: OutgoingRecord[] = [];
    const record = (key: string, value?: Uint8Array): OutgoingRecord => ({
      topic,
      partition: 0,
      key: encoder.encode(key),
      value: value ?? new Uint8Array(),
      tombstone: value === undefined,
      headers: {},
    });
    for (const [clientId, written] of added) {
      for (const key of this.table.takeRetirable(clientId)) records.push(record(key));
      const w = this.table.window(clientId);
      const floor = w?.floor ?? 0;
      let top = w?.high ?? 0;
      for (const seq of written.keys()) top = Math.max(top, seq);
      const key = deltaKey(clientId, `${this.#deltaPrefix}.${(++this.#deltas).toString(36)}`);
      records.push(record(key, encodeWindow({ floor, high: top, written })));
      this.table.deltaWritten(clientId, key, Math.max(...written.keys()), now);
    }
    return [{ topic, partition: 0, records }];
  };

  /** Where this node's companion records landed, once their transaction committed. */
  readonly #companionCommitted = (batches: PartitionBatch[], bases: string[]): void => {
    if (this.#stale) return; // only a current table may skip what it wrote
    batches.forEach((b, i) => {
      if (b.topic !== this.opts.logTopic || b.partition !== 0) return;
      this.#ownCommittedEnd = (BigInt(bases[i]) + BigInt(b.records.length)).toString();
    });
  };

  /**
   * HA, after fencing: write a barrier in a transaction of its own. Activation waits only for
   * that write (one transaction), not for the read-back: the node serves publishes without
   * `seq` at once, and refuses sequenced ones (retryable, not written) until its follower reads
   * the barrier; everything committed before it is then in the table. A long activation would
   * hold the whole pair up (a backup sees no live meanwhile), for the sake of a few clients.
   */
  async afterActivation(produce: (batches: PartitionBatch[]) => Promise<string[]>): Promise<void> {
    const topic = this.opts.logTopic;
    if (topic === undefined) return;
    const wasCurrent = !this.#stale;
    this.#markStale();
    if (wasCurrent) this.#skipOwnWrites();
    const nonce = crypto.randomUUID();
    this.#barrier = nonce;
    // Set before the write too: the follower may read the barrier back before produce() returns.
    this.#barrierWrittenAt = this.#now();
    await produce([{
      topic,
      partition: 0,
      records: [{
        topic,
        partition: 0,
        key: encoder.encode(barrierKey(this.opts.node)),
        value: encodeBarrier(nonce),
        headers: {},
      }],
    }]);
    this.#barrierWrittenAt = this.#now();
    this.#watchRebuild(nonce);
  }

  /** Warns while the barrier is not read back (a slow or stuck follower), and never gives up. */
  #watchRebuild(nonce: string): void {
    clearInterval(this.#rebuildTimer);
    this.#rebuildTimer = setInterval(() => {
      if (this.#barrier !== nonce) return clearInterval(this.#rebuildTimer);
      this.opts.onSlowRebuild?.(this.#now() - this.#barrierWrittenAt);
    }, this.opts.rebuildTimeoutMs);
  }

  /** Stops the rebuild watch (shutdown). */
  close(): void {
    clearInterval(this.#rebuildTimer);
    this.#barrier = undefined;
  }

  /** A record of the dedupe log, read back by the follower (every node, live or not). */
  apply(key: Uint8Array | null, value: Uint8Array | null, writtenAt = this.#now()): void {
    const r = decodeRecord(key, value);
    switch (r.kind) {
      case "delta": {
        // A client is as recent as its last write: an old delta read at start-up must not make
        // a long-gone client look active for another TTL.
        const now = Math.min(this.#now(), writtenAt);
        if (this.#now() - now >= this.table.limits.clientTtlMs) return;
        this.table.merge(r.clientId, r.window, now);
        // Tracked, so that whichever node is live retires it once the client's floor passes it.
        if (r.window.written.size > 0) {
          this.table.deltaWritten(r.clientId, r.key, Math.max(...r.window.written.keys()), now);
        }
        return;
      }
      case "retired":
        return this.table.deltaRetired(r.clientId, r.key);
      case "placeholder":
        return;
      case "live":
        return this.opts.onLiveMark?.(r.node, r.epoch, r.seq, writtenAt);
      case "barrier":
        // Only the barrier of this node's latest activation: an older one (or a peer's) proves
        // nothing about what was committed before this activation's fence.
        if (r.nonce !== this.#barrier) return;
        this.#barrier = undefined;
        clearInterval(this.#rebuildTimer);
        this.#stale = false;
        this.opts.onRebuilt?.(this.#now() - this.#barrierWrittenAt);
        return;
      case "unreadable":
        return this.opts.onUnreadable?.(r.why);
    }
  }
}
