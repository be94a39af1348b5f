/**
 * The publish path into Kafka, without kafkajs: records from every session are
 * placed on a partition, queued per partition, and cut into batches by count and
 * bytes (below the topic's max.message.bytes). Each producer lane sends one request
 * at a time carrying several partitions' batches; several lanes give several
 * requests in flight. A partition always goes through the same lane, so its order
 * holds (and kafkajs' idempotent producer allows one request per broker anyway).
 *
 * Before a record joins a queue its topic is known: a lookup for a new name holds
 * only the records for that name, never the shared queues.
 *
 * Every record is answered once: an ack with its offset (the batch's base offset plus
 * its place in the batch), or a nack that says "not written" only when that is certain.
 */
import {
  type Companion,
  type GroupOffset,
  type KafkaCatalog,
  KafkaFailure,
  type KafkaSink,
  type OutgoingRecord,
  type PartitionBatch,
  type ProducerLane,
  type RecordPosition,
  type TopicInfo,
} from "../kafka/types.ts";
import { answerOffsets, type TakenOffset, WaitingOffsets } from "./group_offsets.ts";
import { PartitionQueue } from "./partition_queue.ts";
import {
  batchFull,
  type CutLimits,
  cutRequest,
  type LaneState,
  moveSticky,
  type Outgoing,
  type Pending,
  type TopicState,
} from "./partitions.ts";
import { BATCH_OVERHEAD_BYTES, recordSizeBound } from "./record_size.ts";

export interface BatchingSinkOptions extends CutLimits {
  /** How long a lane with queued records waits for more before sending (0: at once). */
  lingerMs: number;
  /** A record not confirmed within this time is nacked. */
  publishTimeoutMs: number;
  /** HA: every request is a transaction; sends wait for activate(). One lane only. */
  transactional: boolean;
  /** Failures that say something about Kafka or the HA role (not about a record). */
  onError?(e: KafkaFailure): void;
  /** Each request Kafka confirmed: how many records it carried and how long it took. */
  onRequestDone?(records: number, ms: number): void;
  /**
   * HA: the producer needs a fresh epoch (after a refused request that Kafka may have
   * partly written). Only the HA node may take the pair's id again, once it knows this
   * node is still live: it calls activate(). Records wait meanwhile.
   */
  onNeedsActivation?(): void;
  /**
   * Exactly-once (src/dedupe/): called once for each record that carries a `sequence`, when
   * its fate is final: where Kafka wrote it, "not_written", or "unknown" (may be written).
   * It can come later than the record's answer: a record answered by its deadline while its
   * request was still out learns its fate when the request ends.
   */
  onSequencedFate?(record: OutgoingRecord, fate: RecordPosition | "not_written" | "unknown"): void;
  /** HA: records to write in the same transaction as each request (the dedupe log). */
  companion?: Companion;
  /**
   * HA: runs after activate() has fenced older holders and before records flow: the
   * dedupe log writes a barrier through `produce` and reads up to it.
   */
  afterActivation?(produce: (batches: PartitionBatch[]) => Promise<string[]>): Promise<void>;
}

export interface BatchingSinkDeps {
  lanes: ProducerLane[];
  catalog: Pick<KafkaCatalog, "topic" | "cachedTopic" | "forgetTopic">;
  /** Kafka's default partitioner for keyed records (murmur2, like the Java client). */
  partitionForKey(topic: string, partitions: number, key: Uint8Array): number;
  now?: () => number;
}

/**
 * active: sends. activating: activate() is taking the id; records wait. reinit (HA): a
 * fresh epoch is needed; records wait for the HA node's activate(). standby: not live.
 * lost: a Kafka error while live (the HA node re-activates). fenced: a newer live holds
 * the id. The last three refuse records.
 */
type SinkState = "active" | "activating" | "reinit" | "standby" | "lost" | "fenced";
const ADMITTING: ReadonlySet<SinkState> = new Set(["active", "activating", "reinit"]);

/** Kafka said no about Kafka (unreachable, timed out, fenced), not about what was sent. */
function isAboutKafka(failure: KafkaFailure): boolean {
  return failure.kind === "unavailable" || failure.kind === "timeout" || failure.kind === "fenced";
}

function hashString(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h >>> 0;
}

export class BatchingSink implements KafkaSink {
  readonly #opts: BatchingSinkOptions;
  readonly #deps: BatchingSinkDeps;
  readonly #now: () => number;
  readonly #lanes: LaneState<ProducerLane>[];
  readonly #topics = new Map<string, TopicState>();
  /** Records whose topic is being looked up, per name, in arrival order. */
  readonly #awaitingTopic = new Map<string, Pending[]>();
  #unsettled = 0;
  #idle?: () => void;
  #sweepTimer?: ReturnType<typeof setInterval>;
  #closing?: Promise<void>;
  #state: SinkState;
  /** HA: group offsets waiting to ride in the next transaction. */
  readonly #offsets = new WaitingOffsets();
  /** Bumped by activate, deactivate and abandon: a continuation of an older one acts on nothing newer. */
  #generation = 0;

  constructor(opts: BatchingSinkOptions, deps: BatchingSinkDeps) {
    if (deps.lanes.length === 0) throw new Error("the sink needs at least one producer lane");
    if (opts.transactional && deps.lanes.length !== 1) {
      throw new Error("a transactional sink has exactly one lane: the pair shares one transactional id");
    }
    this.#opts = opts;
    this.#deps = deps;
    this.#now = deps.now ?? (() => performance.now());
    this.#lanes = deps.lanes.map((lane) => ({ lane, ready: new Set(), retryTurn: false, scheduled: false }));
    this.#state = opts.transactional ? "standby" : "active";
  }

  /** False in HA mode until activated, and again after an error, a refused request or fencing. */
  get active(): boolean {
    return this.#state === "active";
  }

  /**
   * HA: takes the pair's transactional id (fencing older holders); records queue meanwhile.
   * Resolves with the activation's epoch (see ProducerLane.activate).
   */
  async activate(): Promise<number> {
    if (!this.#opts.transactional) return 0;
    const lane = this.#lanes[0];
    ++this.#generation;
    await this.#lanesIdle();
    await lane.lane.reset();
    this.#state = "activating";
    let epoch: number;
    try {
      epoch = await lane.lane.activate();
      await this.#opts.afterActivation?.((batches) => lane.lane.produce(batches));
    } catch (e) {
      const failure = asFailure(e, false);
      await lane.lane.reset();
      // Not "standby": that would read as "not live" to whoever still holds a session.
      this.#leave(failure.kind === "fenced" ? "fenced" : "lost");
      throw failure;
    }
    if (this.#state !== "activating") { // stepped down meanwhile
      await lane.lane.reset();
      throw this.#refusal();
    }
    this.#state = "active";
    for (const l of this.#lanes) if (l.ready.size > 0) this.#wake(l, true);
    if (this.#offsets.size > 0) this.#wake(this.#lanes[0], true);
    return epoch;
  }

  async deactivate(): Promise<void> {
    if (!this.#opts.transactional) return;
    const generation = ++this.#generation;
    this.#leave("standby");
    await this.#lanesIdle();
    // A newer activation (or an abandon) since: the producer is not this step-down's to drop.
    if (generation === this.#generation) await this.#lanes[0].lane.reset();
  }

  /**
   * HA, past the step-down deadline: stop at once, without waiting for requests in flight
   * (a Kafka link that drops packets holds them for minutes). Their records get no answer
   * here; the next live's fencing aborts their transaction, so none is written. The producer
   * is dropped in the background. Returns what was let go, for the log.
   */
  abandon(): string[] {
    if (!this.#opts.transactional) return [];
    this.#generation++;
    this.#leave("standby"); // answers what was queued; what is left is in flight
    const inFlight = this.#unsettled;
    void this.#lanes[0].lane.reset().catch(() => {});
    return [`the transactional producer (${inFlight} records in flight, answered by their deadline)`];
  }

  /**
   * HA: commits a group's offset in one of the pair's transactions, so a zombie's commit is
   * fenced like its writes (src/sink/group_offsets.ts).
   */
  commitOffset(offset: GroupOffset): Promise<void> {
    if (!this.#opts.transactional) {
      return Promise.reject(new KafkaFailure("unavailable", "group offsets ride in transactions only (HA)"));
    }
    const refused = this.#closing
      ? new KafkaFailure("unavailable", "the Kafka sink is closed")
      : ADMITTING.has(this.#state)
      ? undefined
      : this.#refusal();
    if (refused) return Promise.reject(refused);
    const committed = this.#offsets.add(offset);
    this.#wake(this.#lanes[0], true);
    return committed;
  }

  send(record: OutgoingRecord): Promise<RecordPosition> {
    const refused = this.#closing
      ? new KafkaFailure("unavailable", "the Kafka sink is closed")
      : ADMITTING.has(this.#state)
      ? undefined
      : this.#refusal();
    if (refused) {
      if (record.sequence) this.#safely(() => this.#opts.onSequencedFate?.(record, "not_written"));
      return Promise.reject(refused);
    }
    return new Promise((resolve, reject) => {
      const p: Pending = {
        record,
        size: 0,
        deadline: this.#now() + this.#opts.publishTimeoutMs,
        settled: false,
        fated: false,
        maybeWritten: false,
        resolve,
        reject,
      };
      if (this.#unsettled++ === 0) this.#startSweep();
      const waiting = this.#awaitingTopic.get(record.topic);
      if (waiting) {
        waiting.push(p); // behind the records already waiting for this name: order holds
        return;
      }
      const info = this.#deps.catalog.cachedTopic(record.topic);
      if (info === undefined) this.#lookUp(record.topic, p);
      else this.#admit(p, info);
    });
  }

  #lookUp(topic: string, first: Pending): void {
    this.#awaitingTopic.set(topic, [first]);
    const release = (info: TopicInfo | null | undefined, error?: unknown) => {
      const waiting = this.#awaitingTopic.get(topic) ?? [];
      this.#awaitingTopic.delete(topic);
      // Kafka's own refusal (e.g. no access to the topic) is passed on; anything else means "try again".
      const failure =
        error instanceof KafkaFailure && error.kind !== "unavailable" && error.kind !== "timeout"
          ? error
          : new KafkaFailure("unavailable", `could not look up topic "${topic}": ${errText(error)}`);
      for (const p of waiting) {
        if (p.settled) continue;
        if (info === undefined) this.#settle(p, failure);
        else this.#admit(p, info);
      }
    };
    this.#deps.catalog.topic(topic).then((info) => release(info), (e) => release(undefined, e));
  }

  /** Checks the record against its topic, places it on a partition and queues it. */
  #admit(p: Pending, info: TopicInfo | null): void {
    const r = p.record;
    if (!ADMITTING.has(this.#state)) return this.#settle(p, this.#refusal());
    if (info === null) {
      return this.#settle(p, new KafkaFailure("unknown_topic", `topic "${r.topic}" does not exist in Kafka`));
    }
    if (r.partition !== undefined && r.partition >= info.partitions) {
      return this.#settle(
        p,
        new KafkaFailure(
          "bad_partition",
          `topic "${r.topic}" has partitions 0 to ${info.partitions - 1}, not ${r.partition}`,
        ),
      );
    }
    if (info.compacted && !r.key) {
      return this.#settle(
        p,
        new KafkaFailure(
          "rejected",
          `topic "${r.topic}" is compacted (cleanup.policy=compact), so Kafka refuses records without a key`,
        ),
      );
    }
    p.size = recordSizeBound(r);
    if (BATCH_OVERHEAD_BYTES + p.size > info.maxMessageBytes) {
      return this.#settle(
        p,
        new KafkaFailure(
          "too_large",
          `the record takes up to ${p.size} bytes in Kafka (key, value and headers), more than topic "${r.topic}" ` +
            `accepts in one batch: max.message.bytes ${info.maxMessageBytes}`,
        ),
      );
    }
    const topic = this.#topicState(info);
    let partition: number;
    if (r.partition !== undefined) partition = r.partition;
    else if (r.key) partition = this.#deps.partitionForKey(r.topic, info.partitions, r.key);
    else partition = topic.sticky;
    const state = topic.partitions[partition];
    state.queue.push(p);
    state.lane.ready.add(state);
    const full = batchFull(state, this.#opts);
    if (r.partition === undefined && !r.key && full) moveSticky(topic);
    this.#wake(state.lane as LaneState<ProducerLane>, full);
  }

  #topicState(info: TopicInfo): TopicState {
    let t = this.#topics.get(info.name);
    if (!t) {
      t = { info, partitions: [], sticky: Math.floor(Math.random() * info.partitions) };
      this.#topics.set(info.name, t);
    }
    t.info = info; // a refreshed lookup may bring more partitions or another limit
    if (t.partitions.length < info.partitions) {
      const laneOffset = hashString(info.name); // spreads each topic's partitions over the lanes from its own start
      while (t.partitions.length < info.partitions) {
        const partition = t.partitions.length;
        const lane = this.#lanes[(laneOffset + partition) % this.#lanes.length];
        t.partitions.push({ topic: t, partition, lane, queue: new PartitionQueue(), retries: [] });
      }
    }
    return t;
  }

  /** A lane with work sends once its linger is up, at once when a batch is full. */
  #wake(lane: LaneState<ProducerLane>, now: boolean): void {
    if (lane.inFlight || lane.scheduled || this.#state !== "active") return;
    if (now || this.#opts.lingerMs === 0) {
      // A microtask, not a direct call: publishes that arrive in the same task share the request.
      lane.scheduled = true;
      queueMicrotask(() => this.#dispatch(lane));
    } else {
      lane.lingerTimer ??= setTimeout(() => this.#dispatch(lane), this.#opts.lingerMs);
    }
  }

  #dispatch(lane: LaneState<ProducerLane>): void {
    lane.scheduled = false;
    clearTimeout(lane.lingerTimer);
    lane.lingerTimer = undefined;
    if (lane.inFlight || this.#state !== "active") return;
    // Group offsets go in a transaction of their own, so that a commit Kafka refuses (a deleted
    // topic, a group the bridge may not use) never takes clients' records down with it; at most
    // one records request goes before them, so a steady stream of records cannot starve them.
    let request: Outgoing[] = [], offsets: TakenOffset[] = [];
    if (lane === this.#lanes[0] && this.#offsets.size > 0 && (this.#offsets.due || lane.ready.size === 0)) {
      offsets = this.#offsets.take();
    } else {
      request = cutRequest(lane, this.#opts);
      if (lane === this.#lanes[0] && this.#offsets.size > 0) this.#offsets.due = true;
    }
    if (request.length === 0 && offsets.length === 0) return;
    lane.inFlight = request;
    this.#send(lane, request, offsets).catch((e) => {
      // A bug, not a Kafka outcome: answer what is left rather than leave it hanging.
      for (const { items } of request) for (const p of items) this.#settle(p, asFailure(e, true));
      answerOffsets(offsets, asFailure(e, true));
    }).finally(() => {
      lane.inFlight = undefined;
      if (lane.ready.size > 0 || (lane === this.#lanes[0] && this.#offsets.size > 0)) this.#dispatch(lane);
    });
  }

  async #send(
    lane: LaneState<ProducerLane>,
    request: Outgoing[],
    offsets: TakenOffset[] = [],
  ): Promise<void> {
    const batches: PartitionBatch[] = request.map(({ state, items }) => {
      const records = new Array<OutgoingRecord>(items.length);
      for (let i = 0; i < items.length; i++) records[i] = items[i].record;
      return { topic: state.topic.info.name, partition: state.partition, records };
    });
    let firsts: number[];
    const started = this.#now();
    try {
      const bases = await lane.lane.produce(
        batches,
        this.#opts.transactional ? this.#opts.companion : undefined,
        offsets.length > 0 ? offsets.map((o) => o.offset) : undefined,
      );
      firsts = request.map(({ items }, i) => {
        const first = Number(bases[i]);
        // Written, but where is unknown (or beyond 2^53): never ack a wrong position.
        if (bases[i] === undefined || first < 0 || !Number.isSafeInteger(first + items.length)) {
          throw new KafkaFailure("timeout", `Kafka returned no usable offset (${bases[i]}) for a batch`);
        }
        return first;
      });
    } catch (e) {
      const failure = asFailure(e, true);
      // The commit's answer; the client may commit again.
      answerOffsets(offsets, failure);
      // A transaction of offsets alone puts no record in doubt, and the lane aborted it (had the
      // abort failed, the next request fails and is handled then): only a fencing moves the sink.
      // Anything else (CONCURRENT_TRANSACTIONS while the last commit's markers are written, a
      // timeout) taking the id again would cost an InitProducerId and a dedupe barrier each time.
      if (request.length === 0 && failure.kind !== "fenced") return;
      return await this.#failed(lane, request, failure);
    }
    answerOffsets(offsets);
    let records = 0;
    for (const { items } of request) records += items.length;
    this.#safely(() => this.#opts.onRequestDone?.(records, this.#now() - started));
    request.forEach(({ state, items }, i) => {
      const topic = state.topic.info.name, partition = state.partition;
      for (let j = 0; j < items.length; j++) {
        this.#settle(items[j], { topic, partition, offset: String(firsts[i] + j) });
      }
    });
  }

  /**
   * A refused request.
   *
   * Kafka says no about Kafka (unreachable, timed out, fenced): its records get that answer.
   *
   * Kafka says no about the request's records or topic: kafkajs reports the first refused
   * partition's error for the whole request, so with several batches each goes again on its
   * own; with one, a batch refused for its content is halved until the record at fault is
   * alone and answered alone. Other clients' records are written and acked, and the HA role
   * is untouched.
   *
   * A fresh producer id (HA: epoch) follows whenever Kafka may have appended part of the
   * request: kafkajs rewinds the sequence numbers of the whole request, and reusing them could
   * let the broker take a new batch for a duplicate of one it wrote, acking records it never
   * wrote. A refused single batch was not appended, so its rewound numbers are right.
   */
  async #failed(lane: LaneState<ProducerLane>, request: Outgoing[], failure: KafkaFailure): Promise<void> {
    if (isAboutKafka(failure)) {
      for (const { items } of request) for (const p of items) this.#settle(p, failure);
      this.#safely(() => this.#opts.onError?.(failure));
      await lane.lane.reset();
      // HA: only the HA node, which knows whether this node is still live, may take the id back.
      if (this.#opts.transactional) this.#leave(failure.kind === "fenced" ? "fenced" : "lost");
      return;
    }
    const byContent = failure.kind === "too_large" || failure.kind === "invalid_record";
    // Records already answered by their deadline drop out of the retries below: their fate is
    // known now. A transaction that Kafka refused was aborted; a plain single batch that Kafka
    // refused was not appended; a plain multi-batch request may be partly written.
    for (const { items } of request) {
      for (const p of items) {
        if (!p.settled) continue;
        const certain = this.#opts.transactional || (request.length === 1 && !p.maybeWritten);
        this.#fate(p, certain ? "not_written" : "unknown");
      }
    }
    if (failure.kind === "too_large" || failure.kind === "unknown_topic") {
      for (const { state } of request) this.#refreshTopic(state.topic.info.name);
    }
    if (request.length > 1) {
      // Without a transaction, Kafka may have written some batches before refusing another.
      const mayBeWritten = !this.#opts.transactional;
      for (const { state, items } of request) {
        if (mayBeWritten) { for (const p of items) p.maybeWritten = true; }
        state.retries.unshift(items);
        state.lane.ready.add(state);
      }
      if (!this.#opts.transactional) await lane.lane.reset();
      else if (this.#state === "active") {
        this.#state = "reinit";
        this.#safely(() => this.#opts.onNeedsActivation?.());
      }
    } else {
      const [{ state, items }] = request;
      if (byContent && items.length > 1) {
        const half = Math.ceil(items.length / 2);
        state.retries.unshift(items.slice(0, half), items.slice(half));
        state.lane.ready.add(state);
      } else {
        for (const p of items) {
          // Conclusive even after an earlier refused request: a record refused alone for what it is
          // cannot have been accepted in a larger batch, and a topic that does not exist holds nothing.
          if (byContent || failure.kind === "unknown_topic") p.maybeWritten = false;
          this.#settle(p, byContent ? this.#refusedAlone(p, failure) : failure);
        }
      }
    }
    if (!ADMITTING.has(this.#state)) this.#leave(this.#state as "standby" | "lost" | "fenced"); // stepped down meanwhile
  }

  #refusedAlone(p: Pending, failure: KafkaFailure): KafkaFailure {
    if (failure.kind !== "too_large") return failure;
    return new KafkaFailure(
      "too_large",
      `Kafka refused the record as too large: it takes up to ${p.size} bytes (key, value and headers); ` +
        `topic "${p.record.topic}" accepts ${
          this.#topics.get(p.record.topic)?.info.maxMessageBytes ?? "?"
        } bytes per batch (max.message.bytes)`,
    );
  }

  /** Kafka disagreed with what is cached about the topic: look it up again for what comes next. */
  #refreshTopic(name: string): void {
    this.#deps.catalog.forgetTopic(name);
    this.#deps.catalog.topic(name).then((info) => {
      if (info && this.#topics.has(name)) this.#topicState(info);
    }, () => {});
  }

  /** Stops taking records and answers every queued one (never sent, so not written: unless maybeWritten). */
  #leave(next: "standby" | "lost" | "fenced"): void {
    // "lost" never hides a step-down or a fencing that came first.
    if (!(next === "lost" && (this.#state === "standby" || this.#state === "fenced"))) this.#state = next;
    const refusal = this.#refusal();
    answerOffsets(this.#offsets.take(), refusal);
    for (const lane of this.#lanes) {
      for (const s of lane.ready) {
        for (const p of s.queue.drain()) this.#settle(p, refusal);
        for (const part of s.retries.splice(0)) for (const p of part) this.#settle(p, refusal);
      }
      lane.ready.clear();
    }
  }

  #refusal(): KafkaFailure {
    return this.#state === "lost"
      ? new KafkaFailure("unavailable", "the Kafka producer is reconnecting after an error; retry shortly")
      : new KafkaFailure(
        "fenced",
        this.#state === "fenced"
          ? "a newer live holds the pair's transactional id"
          : "this bridge is not the live node",
      );
  }

  #settle(p: Pending, outcome: RecordPosition | KafkaFailure, final = true): void {
    if (final && p.record.sequence) {
      this.#fate(
        p,
        !(outcome instanceof KafkaFailure)
          ? outcome
          : outcome.kind === "timeout" || p.maybeWritten
          ? "unknown"
          : "not_written",
      );
    }
    if (p.settled) return;
    p.settled = true;
    if (!(outcome instanceof KafkaFailure)) p.resolve(outcome);
    else if (!p.maybeWritten || outcome.kind === "timeout") p.reject(outcome);
    else {
      p.reject(
        new KafkaFailure(
          "timeout",
          `${outcome.message}; an earlier request that Kafka refused may have written it`,
        ),
      );
    }
    if (--this.#unsettled === 0) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
      this.#idle?.();
    }
  }

  #fate(p: Pending, fate: RecordPosition | "not_written" | "unknown"): void {
    if (p.fated || !p.record.sequence) return;
    p.fated = true;
    this.#safely(() => this.#opts.onSequencedFate?.(p.record, fate));
  }

  /** One timer for all deadlines, instead of one per record. */
  #startSweep(): void {
    const every = Math.min(100, Math.max(5, Math.floor(this.#opts.publishTimeoutMs / 10)));
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
  }

  #sweep(): void {
    const now = this.#now();
    const ms = this.#opts.publishTimeoutMs;
    const notSent = new KafkaFailure(
      "unavailable",
      `Kafka could not take the record within ${ms} ms; it was not written`,
    );
    const maybeSent = new KafkaFailure(
      "timeout",
      `Kafka did not confirm the record within ${ms} ms; it may be written`,
    );
    for (const lane of this.#lanes) {
      for (const s of lane.ready) {
        // Deadlines grow along a queue: only its head can be due.
        for (let p = s.queue.peek(); p !== undefined && p.deadline <= now; p = s.queue.peek()) {
          s.queue.shift();
          this.#settle(p, notSent);
        }
        for (const part of s.retries) for (const p of part) if (p.deadline <= now) this.#settle(p, notSent);
      }
      for (const { items } of lane.inFlight ?? []) {
        // Answered now, but the request goes on: its end tells the record's fate.
        for (const p of items) if (p.deadline <= now) this.#settle(p, maybeSent, false);
      }
    }
    for (const waiting of this.#awaitingTopic.values()) {
      for (const p of waiting) if (p.deadline <= now) this.#settle(p, notSent);
    }
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch { /* a listener's error is not the sink's outcome */ }
  }

  async #lanesIdle(): Promise<void> {
    while (this.#lanes.some((l) => l.inFlight)) await new Promise((r) => setTimeout(r, 5));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const lane of this.#lanes) if (lane.lingerTimer !== undefined) this.#dispatch(lane);
      // Every record is answered by Kafka or by its deadline (the sweep keeps running).
      if (this.#unsettled > 0) await new Promise<void>((r) => (this.#idle = r));
      await this.#lanesIdle();
      for (const lane of this.#lanes) clearTimeout(lane.lingerTimer);
      await Promise.all(this.#lanes.map((l) => l.lane.reset()));
    })();
    return this.#closing;
  }
}

/** Errors a lane throws are KafkaFailures; anything else is a bug there, and the outcome unknown. */
function asFailure(e: unknown, sent: boolean): KafkaFailure {
  if (e instanceof KafkaFailure) return e;
  return new KafkaFailure(sent ? "timeout" : "unavailable", `Kafka producer error: ${errText(e)}`);
}

function errText(e: unknown): string {
  return (e as Error)?.message ?? String(e);
}
