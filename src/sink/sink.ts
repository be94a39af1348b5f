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
  type KafkaCatalog,
  KafkaFailure,
  type KafkaSink,
  type OutgoingRecord,
  type PartitionBatch,
  type ProducerLane,
  type RecordPosition,
  type TopicInfo,
} from "../kafka/types.ts";
import { PartitionQueue } from "./partition_queue.ts";
import { BATCH_OVERHEAD_BYTES, recordSizeBound } from "./record_size.ts";

export interface BatchingSinkOptions {
  /** How long a lane with queued records waits for more before sending (0: at once). */
  lingerMs: number;
  /** Records per partition batch at most. */
  maxBatchMessages: number;
  /** Bytes per partition batch at most; the topic's max.message.bytes lowers it further. */
  maxBatchBytes: number;
  /** Bytes per produce request at most (all its partitions' batches). */
  maxRequestBytes: number;
  /** A record not confirmed within this time is nacked. */
  publishTimeoutMs: number;
  /** HA: every request is a transaction; sends wait for activate(). One lane only. */
  transactional: boolean;
  /** Failures that say something about Kafka or the HA role (not about a record). */
  onError?(e: KafkaFailure): void;
}

export interface BatchingSinkDeps {
  lanes: ProducerLane[];
  catalog: Pick<KafkaCatalog, "topic" | "cachedTopic" | "forgetTopic">;
  /** Kafka's default partitioner for keyed records (murmur2, like the Java client). */
  partitionForKey(topic: string, partitions: number, key: Uint8Array): number;
  now?: () => number;
}

interface Pending {
  record: OutgoingRecord;
  /** Upper bound of the record's encoded size. */
  size: number;
  deadline: number;
  settled: boolean;
  resolve(p: RecordPosition): void;
  reject(e: KafkaFailure): void;
}

interface PartitionState {
  topic: TopicState;
  partition: number;
  lane: LaneState;
  queue: PartitionQueue<Pending>;
  /** Parts of a batch Kafka refused for its content: each goes alone, before anything newer. */
  retries: Pending[][];
}

interface TopicState {
  info: TopicInfo;
  partitions: PartitionState[];
  /** Keyless records fill one partition's batch, then move on (Kafka's sticky partitioner). */
  sticky: number;
  /** Spreads the topic's partitions over the lanes from a topic-specific start. */
  laneOffset: number;
}

interface Outgoing {
  state: PartitionState;
  items: Pending[];
}

interface LaneState {
  lane: ProducerLane;
  partitions: PartitionState[];
  inFlight?: Outgoing[];
  /** The lane's next request starts from this partition, so that none is always last. */
  next: number;
  lingerTimer?: ReturnType<typeof setTimeout>;
  scheduled: boolean;
}

type SinkState = "active" | "standby" | "lost" | "fenced";

function hashString(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h >>> 0;
}

export class BatchingSink implements KafkaSink {
  readonly #opts: BatchingSinkOptions;
  readonly #deps: BatchingSinkDeps;
  readonly #now: () => number;
  readonly #lanes: LaneState[];
  readonly #topics = new Map<string, TopicState>();
  /** Records whose topic is being looked up, per name, in arrival order. */
  readonly #awaitingTopic = new Map<string, Pending[]>();
  #unsettled = 0;
  #idle?: () => void;
  #sweepTimer?: ReturnType<typeof setInterval>;
  #closed = false;
  /**
   * HA mode: standby until activated; lost after a Kafka error while live (the HA node
   * re-activates); fenced when Kafka said a newer live holds the id.
   */
  #state: SinkState;

  constructor(opts: BatchingSinkOptions, deps: BatchingSinkDeps) {
    if (deps.lanes.length === 0) throw new Error("the sink needs at least one producer lane");
    if (opts.transactional && deps.lanes.length !== 1) {
      throw new Error("a transactional sink has exactly one lane: the pair shares one transactional id");
    }
    this.#opts = opts;
    this.#deps = deps;
    this.#now = deps.now ?? (() => performance.now());
    this.#lanes = deps.lanes.map((lane) => ({ lane, partitions: [], next: 0, scheduled: false }));
    this.#state = opts.transactional ? "standby" : "active";
  }

  /** False in HA mode until activated, and again after an error or fencing. */
  get active(): boolean {
    return this.#state === "active";
  }

  /** Records handed to the sink and not answered yet. */
  get unsettled(): number {
    return this.#unsettled;
  }

  async activate(): Promise<void> {
    if (!this.#opts.transactional) return;
    const lane = this.#lanes[0];
    await lane.lane.reset();
    this.#state = "active";
    try {
      await lane.lane.activate();
    } catch (e) {
      const failure = asFailure(e, false);
      // Not "standby": that would read as "not live" to whoever still holds a session.
      this.#state = failure.kind === "fenced" ? "fenced" : "lost";
      await lane.lane.reset();
      throw failure;
    }
  }

  async deactivate(): Promise<void> {
    if (!this.#opts.transactional) return;
    this.#leave("standby");
    await this.#lanesIdle();
    await this.#lanes[0].lane.reset();
  }

  send(record: OutgoingRecord): Promise<RecordPosition> {
    if (this.#closed) return Promise.reject(new KafkaFailure("unavailable", "the Kafka sink is closed"));
    if (this.#state !== "active") return Promise.reject(this.#refusal());
    return new Promise((resolve, reject) => {
      const p: Pending = {
        record,
        size: 0,
        deadline: this.#now() + this.#opts.publishTimeoutMs,
        settled: false,
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
      for (const p of waiting) {
        if (p.settled) continue;
        if (info === undefined) {
          this.#settle(
            p,
            new KafkaFailure("unavailable", `could not look up topic "${topic}": ${errText(error)}`),
          );
        } else this.#admit(p, info);
      }
    };
    this.#deps.catalog.topic(topic).then((info) => release(info), (e) => release(undefined, e));
  }

  /** Checks the record against its topic, places it on a partition and queues it. */
  #admit(p: Pending, info: TopicInfo | null): void {
    const r = p.record;
    if (this.#state !== "active") return this.#settle(p, this.#refusal());
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
    const full = this.#batchFull(state);
    if (r.partition === undefined && !r.key && full) this.#moveSticky(topic);
    this.#wake(state.lane, full);
  }

  #topicState(info: TopicInfo): TopicState {
    let t = this.#topics.get(info.name);
    if (!t) {
      t = {
        info,
        partitions: [],
        sticky: Math.floor(Math.random() * info.partitions),
        laneOffset: hashString(info.name),
      };
      this.#topics.set(info.name, t);
    }
    t.info = info; // a refreshed lookup may bring more partitions or another limit
    while (t.partitions.length < info.partitions) {
      const partition = t.partitions.length;
      const lane = this.#lanes[(t.laneOffset + partition) % this.#lanes.length];
      const state: PartitionState = { topic: t, partition, lane, queue: new PartitionQueue(), retries: [] };
      t.partitions.push(state);
      lane.partitions.push(state);
    }
    return t;
  }

  #moveSticky(t: TopicState): void {
    t.sticky = (t.sticky + 1) % t.info.partitions;
  }

  #batchCap(state: PartitionState): number {
    return Math.min(this.#opts.maxBatchBytes, state.topic.info.maxMessageBytes);
  }

  #batchFull(state: PartitionState): boolean {
    return state.queue.length >= this.#opts.maxBatchMessages ||
      BATCH_OVERHEAD_BYTES + state.queue.bytes >= this.#batchCap(state);
  }

  /** A lane with work sends once its linger is up, at once when a batch is full. */
  #wake(lane: LaneState, now: boolean): void {
    if (lane.inFlight || lane.scheduled) return;
    if (now || this.#opts.lingerMs === 0) {
      // A microtask, not a direct call: publishes that arrive in the same task share the request.
      lane.scheduled = true;
      queueMicrotask(() => this.#dispatch(lane));
    } else {
      lane.lingerTimer ??= setTimeout(() => this.#dispatch(lane), this.#opts.lingerMs);
    }
  }

  #dispatch(lane: LaneState): void {
    lane.scheduled = false;
    if (lane.lingerTimer !== undefined) {
      clearTimeout(lane.lingerTimer);
      lane.lingerTimer = undefined;
    }
    if (lane.inFlight || this.#state !== "active") return;
    const request = this.#cutRequest(lane);
    if (request.length === 0) return;
    lane.inFlight = request;
    void this.#send(lane, request);
  }

  /** The lane's next request: a refused batch's part alone, or a batch from each partition with records. */
  #cutRequest(lane: LaneState): Outgoing[] {
    for (const state of lane.partitions) {
      while (state.retries.length > 0) {
        const items = state.retries.shift()!.filter((p) => !p.settled);
        if (items.length > 0) return [{ state, items }];
      }
    }
    const request: Outgoing[] = [];
    let room = this.#opts.maxRequestBytes;
    const n = lane.partitions.length;
    for (let k = 0; k < n && room > 0; k++) {
      const state = lane.partitions[(lane.next + k) % n];
      if (state.queue.length === 0) continue;
      const items = this.#cutBatch(state, room, request.length === 0);
      if (items.length === 0) continue;
      request.push({ state, items });
      for (const p of items) room -= p.size;
      room -= BATCH_OVERHEAD_BYTES;
      if (state.topic.sticky === state.partition) this.#moveSticky(state.topic);
    }
    lane.next = n === 0 ? 0 : (lane.next + 1) % n;
    return request;
  }

  #cutBatch(state: PartitionState, room: number, firstInRequest: boolean): Pending[] {
    const items: Pending[] = [];
    const cap = Math.min(this.#batchCap(state), room);
    let bytes = BATCH_OVERHEAD_BYTES;
    const q = state.queue;
    for (let p = q.peek(); p !== undefined; p = q.peek()) {
      if (p.settled) { // timed out while queued: already answered, never sent
        q.shift();
        continue;
      }
      if (items.length >= this.#opts.maxBatchMessages) break;
      // The first record of a request always goes: it passed admission, so it fits the topic's limit.
      if (bytes + p.size > cap && (items.length > 0 || !firstInRequest)) break;
      items.push(q.shift()!);
      bytes += p.size;
    }
    return items;
  }

  async #send(lane: LaneState, request: Outgoing[]): Promise<void> {
    const batches: PartitionBatch[] = request.map(({ state, items }) => {
      const records = new Array<OutgoingRecord>(items.length);
      for (let i = 0; i < items.length; i++) records[i] = items[i].record;
      return { topic: state.topic.info.name, partition: state.partition, records };
    });
    try {
      const bases = await lane.lane.produce(batches);
      request.forEach(({ state, items }, i) => this.#ackBatch(state, items, bases[i]));
    } catch (e) {
      await this.#failed(lane, request, asFailure(e, true));
    } finally {
      lane.inFlight = undefined;
    }
    if (this.#hasWork(lane)) this.#dispatch(lane);
  }

  #ackBatch(state: PartitionState, items: Pending[], base: string | undefined): void {
    const topic = state.topic.info.name, partition = state.partition;
    const first = Number(base);
    if (base === undefined || !Number.isSafeInteger(first + items.length) || first < 0) {
      // Written, but where is unknown (or beyond 2^53): never ack a wrong position.
      const f = new KafkaFailure("timeout", `Kafka returned no usable offset (${base}) for the batch`);
      for (const p of items) this.#settle(p, f);
      return;
    }
    for (let i = 0; i < items.length; i++) {
      this.#settle(items[i], { topic, partition, offset: String(first + i) });
    }
  }

  /**
   * A refused request. If Kafka refused what is in it (too large, invalid), its batches
   * are split and sent alone until the record at fault is alone and nacked alone; the
   * other records are written and acked, and the HA role is untouched. Anything else
   * answers the request's records with the failure.
   *
   * Either way the producer is replaced before the lane sends again: after a failed
   * request kafkajs rewinds its sequence numbers, and reusing them could let the broker
   * take a new batch for a duplicate of one it wrote, acking records it never wrote.
   */
  async #failed(lane: LaneState, request: Outgoing[], failure: KafkaFailure): Promise<void> {
    const byContent = failure.kind === "too_large" || failure.kind === "invalid_record";
    if (byContent) {
      for (const { state } of request) this.#refreshTopic(state.topic.info.name);
      if (request.length > 1) {
        // Which partition Kafka refused is not reported: each batch goes again on its own.
        for (const { state, items } of request) state.retries.unshift(items);
      } else {
        const [{ state, items }] = request;
        if (items.length === 1) this.#settle(items[0], this.#refusedAlone(items[0], failure));
        else {
          const half = Math.ceil(items.length / 2);
          state.retries.unshift(items.slice(0, half), items.slice(half));
        }
      }
    } else {
      for (const { items } of request) for (const p of items) this.#settle(p, failure);
      if (failure.kind === "unknown_topic") {
        for (const { state } of request) this.#refreshTopic(state.topic.info.name);
      }
    }
    const aboutKafka = failure.kind === "unavailable" || failure.kind === "timeout" ||
      failure.kind === "fenced";
    if (aboutKafka) this.#opts.onError?.(failure);
    await lane.lane.reset();
    if (!this.#opts.transactional) return;
    if (aboutKafka) {
      // Only the HA node, which knows whether this node is still live, may take the id back.
      this.#leave(failure.kind === "fenced" ? "fenced" : "lost");
      return;
    }
    if (this.#state !== "active") return;
    try {
      await lane.lane.activate(); // a fresh producer epoch, still live: the failure was about records
    } catch (e) {
      const f = asFailure(e, false);
      this.#opts.onError?.(f);
      await lane.lane.reset();
      this.#leave(f.kind === "fenced" ? "fenced" : "lost");
    }
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
      const t = this.#topics.get(name);
      if (t && info) this.#topicState(info);
    }, () => {});
  }

  #hasWork(lane: LaneState): boolean {
    return lane.partitions.some((s) => s.queue.length > 0 || s.retries.length > 0);
  }

  /** Stops taking records: answers every queued one (not sent, so certainly not written). */
  #leave(state: Exclude<SinkState, "active">): void {
    this.#state = state;
    const refusal = this.#refusal();
    for (const t of this.#topics.values()) {
      for (const s of t.partitions) {
        for (const p of s.queue.drain()) this.#settle(p, refusal);
        for (const part of s.retries.splice(0)) for (const p of part) this.#settle(p, refusal);
      }
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

  #settle(p: Pending, outcome: RecordPosition | KafkaFailure): void {
    if (p.settled) return;
    p.settled = true;
    if (outcome instanceof KafkaFailure) p.reject(outcome);
    else p.resolve(outcome);
    if (--this.#unsettled === 0) {
      clearInterval(this.#sweepTimer);
      this.#sweepTimer = undefined;
      this.#idle?.();
    }
  }

  /** One timer for all deadlines, instead of one per record. */
  #startSweep(): void {
    const every = Math.min(100, Math.max(5, Math.floor(this.#opts.publishTimeoutMs / 10)));
    this.#sweepTimer = setInterval(() => this.#sweep(), every);
  }

  #sweep(): void {
    const now = this.#now();
    const ms = this.#opts.publishTimeoutMs;
    const notSent = () =>
      new KafkaFailure("unavailable", `Kafka could not take the record within ${ms} ms; it was not written`);
    const maybeSent = () =>
      new KafkaFailure("timeout", `Kafka did not confirm the record within ${ms} ms; it may be written`);
    for (const t of this.#topics.values()) {
      for (const s of t.partitions) {
        // Deadlines grow along a queue: only its head can be due.
        for (let p = s.queue.peek(); p !== undefined && p.deadline <= now; p = s.queue.peek()) {
          s.queue.shift();
          this.#settle(p, notSent());
        }
        for (const part of s.retries) {
          for (const p of part) {
            // Without a transaction, a part of a refused request may have been written already.
            if (p.deadline <= now) this.#settle(p, this.#opts.transactional ? notSent() : maybeSent());
          }
        }
      }
    }
    for (const waiting of this.#awaitingTopic.values()) {
      for (const p of waiting) if (p.deadline <= now) this.#settle(p, notSent());
    }
    for (const lane of this.#lanes) {
      for (const { items } of lane.inFlight ?? []) {
        for (const p of items) if (p.deadline <= now) this.#settle(p, maybeSent());
      }
    }
  }

  async #lanesIdle(): Promise<void> {
    while (this.#lanes.some((l) => l.inFlight)) await new Promise((r) => setTimeout(r, 5));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const lane of this.#lanes) if (lane.lingerTimer !== undefined) this.#dispatch(lane);
    // Every record is answered by Kafka or by its deadline (the sweep keeps running).
    if (this.#unsettled > 0) await new Promise<void>((r) => (this.#idle = r));
    await this.#lanesIdle();
    await Promise.all(this.#lanes.map((l) => l.lane.reset()));
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
