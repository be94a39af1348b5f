/**
 * The publish path into Kafka: records from all sessions are batched into one
 * idempotent, acks=all producer request at a time. One batch in flight keeps
 * every client's order; a batch that fills while another is in flight goes next.
 *
 * Offsets: partitions are chosen here (not inside kafkajs) so that each record's
 * offset is the partition's base offset plus its place in the batch.
 */
import { Buffer } from "node:buffer";
import { type Kafka, type Message, Partitioners, type PartitionMetadata, type Producer } from "kafkajs";
import {
  type KafkaCatalog,
  KafkaFailure,
  type KafkaSink,
  type OutgoingRecord,
  type RecordPosition,
} from "../types.ts";
import { classify } from "./errors.ts";

export interface SinkOptions {
  /**
   * HA: every batch is a Kafka transaction under this id, and activate() takes
   * the id over, fencing older holders. Unset: a plain idempotent producer that
   * connects on first use.
   */
  transactionalId?: string;
  lingerMs: number;
  maxBatchMessages: number;
  publishTimeoutMs: number;
  requestTimeoutMs: number;
  onError?(e: KafkaFailure): void;
}

interface Pending {
  record: OutgoingRecord;
  resolve(p: RecordPosition): void;
  reject(e: KafkaFailure): void;
  settled: boolean;
  timer: ReturnType<typeof setTimeout>;
}

const keyPartitioner = Partitioners.DefaultPartitioner();

/** The partitioner only needs the partition ids; built once per partition count, not per record. */
const metadataByCount = new Map<number, PartitionMetadata[]>();
function partitionMetadataFor(partitions: number): PartitionMetadata[] {
  let m = metadataByCount.get(partitions);
  if (!m) {
    m = Array.from(
      { length: partitions },
      (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }),
    );
    metadataByCount.set(partitions, m);
  }
  return m;
}

/** Java-compatible murmur2 placement for keyed records, as kafkajs' default partitioner does it. */
function partitionForKey(topic: string, partitions: number, key: Uint8Array): number {
  const partitionMetadata = partitionMetadataFor(partitions);
  return keyPartitioner({ topic, partitionMetadata, message: { key: Buffer.from(key), value: null } });
}

export class KafkajsSink implements KafkaSink {
  readonly #kafka: Kafka;
  readonly #catalog: KafkaCatalog;
  readonly #opts: SinkOptions;
  #producer?: Producer;
  #connecting?: Promise<Producer>;
  #queue: Pending[] = [];
  #inFlight?: Promise<void>;
  #lingerTimer?: ReturnType<typeof setTimeout>;
  #sticky = new Map<string, number>();
  #closed = false;
  /**
   * HA mode: only an activated sink may (re)connect, so a zombie never takes the id back.
   * standby: not live; lost: a Kafka error while live (the HA node re-activates it);
   * fenced: Kafka said a newer live holds the id.
   */
  #state: "active" | "standby" | "lost" | "fenced";

  constructor(kafka: Kafka, catalog: KafkaCatalog, opts: SinkOptions) {
    this.#kafka = kafka;
    this.#catalog = catalog;
    this.#opts = opts;
    this.#state = opts.transactionalId === undefined ? "active" : "standby";
  }

  /** False in HA mode until activated, and again after an error or fencing. */
  get active(): boolean {
    return this.#state === "active";
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

  get #transactional(): boolean {
    return this.#opts.transactionalId !== undefined;
  }

  async activate(): Promise<void> {
    if (!this.#transactional) return;
    await this.#resetProducer();
    this.#state = "active";
    try {
      const producer = await this.#connect();
      // kafkajs sends the transactional InitProducerId only with the first transaction;
      // an empty one now bumps the producer epoch and fences the previous live at once.
      const tx = await producer.transaction();
      await tx.abort();
    } catch (e) {
      const failure = classify(e);
      // Not "standby": that would read as "not live" to whoever still holds a session.
      this.#state = failure.kind === "fenced" ? "fenced" : "lost";
      await this.#resetProducer();
      throw failure;
    }
  }

  async deactivate(): Promise<void> {
    if (!this.#transactional) return;
    this.#state = "standby";
    while (this.#inFlight) await this.#inFlight;
    await this.#resetProducer();
  }

  send(record: OutgoingRecord): Promise<RecordPosition> {
    if (this.#closed) return Promise.reject(new KafkaFailure("unavailable", "the Kafka sink is closed"));
    if (this.#state !== "active") return Promise.reject(this.#refusal());
    return new Promise((resolve, reject) => {
      const p: Pending = {
        record,
        resolve,
        reject,
        settled: false,
        timer: undefined as unknown as ReturnType<typeof setTimeout>,
      };
      p.timer = setTimeout(() => {
        this.#settle(
          p,
          new KafkaFailure(
            "timeout",
            `Kafka did not confirm the record within ${this.#opts.publishTimeoutMs} ms`,
          ),
        );
      }, this.#opts.publishTimeoutMs);
      this.#queue.push(p);
      this.#schedule();
    });
  }

  #settle(p: Pending, outcome: RecordPosition | KafkaFailure): void {
    if (p.settled) return;
    p.settled = true;
    clearTimeout(p.timer);
    if (outcome instanceof KafkaFailure) p.reject(outcome);
    else p.resolve(outcome);
  }

  #schedule(): void {
    if (this.#inFlight || this.#lingerTimer !== undefined) return;
    if (this.#queue.length >= this.#opts.maxBatchMessages || this.#opts.lingerMs === 0) {
      this.#flush();
      return;
    }
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = undefined;
      this.#flush();
    }, this.#opts.lingerMs);
  }

  #flush(): void {
    if (this.#inFlight) return;
    // Records that timed out while queued were already nacked: never send them.
    const batch = this.#queue.splice(0, this.#opts.maxBatchMessages).filter((p) => !p.settled);
    if (batch.length === 0) return;
    this.#inFlight = this.#sendBatch(batch).finally(() => {
      this.#inFlight = undefined;
      if (this.#queue.length > 0) this.#flush();
    });
  }

  async #connect(): Promise<Producer> {
    if (this.#producer) return this.#producer;
    this.#connecting ??= (async () => {
      if (this.#state !== "active") throw this.#refusal();
      const producer = this.#kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        transactionalId: this.#opts.transactionalId,
        createPartitioner: Partitioners.DefaultPartitioner, // unused (records arrive placed); silences a kafkajs notice
        allowAutoTopicCreation: false,
        // Short first retry: a transaction right after a commit often meets CONCURRENT_TRANSACTIONS briefly.
        retry: { retries: 5, initialRetryTime: 20, maxRetryTime: 1000 },
      });
      try {
        await producer.connect();
      } catch (e) {
        await producer.disconnect().catch(() => {});
        throw e;
      }
      this.#producer = producer;
      return producer;
    })().finally(() => (this.#connecting = undefined));
    return await this.#connecting;
  }

  /**
   * After a failed request the outcome is unknown. Reusing the producer would let
   * the broker take the next batch's sequence numbers for a duplicate of the failed
   * one and "ack" records it never wrote, so a fresh producer id is taken instead.
   */
  async #resetProducer(): Promise<void> {
    const old = this.#producer;
    this.#producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  async #place(batch: Pending[]): Promise<Pending[]> {
    const placed: Pending[] = [];
    const stickyThisBatch = new Map<string, number>();
    for (const p of batch) {
      const r = p.record;
      const info = await this.#catalog.topic(r.topic);
      if (!info) {
        this.#settle(p, new KafkaFailure("unknown_topic", `topic "${r.topic}" does not exist in Kafka`));
        continue;
      }
      if (r.partition !== undefined) {
        if (r.partition >= info.partitions) {
          this.#settle(
            p,
            new KafkaFailure(
              "bad_partition",
              `topic "${r.topic}" has partitions 0 to ${info.partitions - 1}, not ${r.partition}`,
            ),
          );
          continue;
        }
      } else if (r.key) {
        r.partition = partitionForKey(r.topic, info.partitions, r.key);
      } else {
        // Sticky: keyless records of one batch share a partition, rotating per batch.
        let part = stickyThisBatch.get(r.topic);
        if (part === undefined) {
          part = ((this.#sticky.get(r.topic) ?? -1) + 1) % info.partitions;
          this.#sticky.set(r.topic, part);
          stickyThisBatch.set(r.topic, part);
        }
        r.partition = part;
      }
      placed.push(p);
    }
    return placed;
  }

  async #sendBatch(batch: Pending[]): Promise<void> {
    let placed: Pending[] = batch;
    try {
      placed = await this.#place(batch);
      if (placed.length === 0) return;
      const byTopic = new Map<string, Message[]>();
      for (const { record: r } of placed) {
        const list = byTopic.get(r.topic) ?? byTopic.set(r.topic, []).get(r.topic)!;
        list.push({
          partition: r.partition,
          key: r.key ? Buffer.from(r.key) : null,
          value: Buffer.from(r.value),
          headers: r.headers,
        });
      }
      const producer = await this.#connect();
      const request = {
        acks: -1,
        timeout: this.#opts.requestTimeoutMs,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      };
      let results;
      if (this.#transactional) {
        // Acked only once committed: a fenced zombie's batch is aborted, never visible.
        const tx = await producer.transaction();
        try {
          results = await tx.sendBatch(request);
          await tx.commit();
        } catch (e) {
          await tx.abort().catch(() => {});
          throw e;
        }
      } else {
        results = await producer.sendBatch(request);
      }
      const base = new Map<string, bigint>();
      for (const res of results) {
        base.set(`${res.topicName}\u0000${res.partition}`, BigInt(res.baseOffset ?? "-1"));
      }
      const next = new Map<string, bigint>();
      for (const p of placed) {
        const k = `${p.record.topic}\u0000${p.record.partition}`;
        const offset = next.get(k) ?? base.get(k);
        if (offset === undefined || offset < 0n) {
          this.#settle(p, new KafkaFailure("unavailable", "Kafka returned no offset for the record"));
          continue;
        }
        next.set(k, offset + 1n);
        this.#settle(p, { topic: p.record.topic, partition: p.record.partition!, offset: offset.toString() });
      }
    } catch (e) {
      const failure = classify(e);
      // In HA mode any failure deactivates: only the HA node, knowing it is still live, may reconnect.
      if (this.#transactional && this.#state === "active") {
        this.#state = failure.kind === "fenced" ? "fenced" : "lost";
      }
      this.#opts.onError?.(failure);
      for (const p of placed) this.#settle(p, failure);
      await this.#resetProducer();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#lingerTimer !== undefined) {
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = undefined;
      this.#flush();
    }
    while (this.#inFlight) await this.#inFlight;
    for (const p of this.#queue.splice(0)) {
      this.#settle(p, new KafkaFailure("unavailable", "the Kafka sink closed"));
    }
    await this.#resetProducer();
  }
}
