/**
 * One kafkajs producer as a lane of the sink (src/sink/sink.ts): idempotent,
 * acks=all, and in HA mode transactional under the pair's shared id.
 *
 * Why lanes: kafkajs' idempotent producer holds a lock per broker for the whole
 * produce round trip, so one producer has at most one request in flight per broker.
 * The sink runs several lanes for several requests in flight, and keeps each
 * partition on one lane, so per-partition order and sequence numbers stay intact.
 */
import { Buffer } from "node:buffer";
import { type Kafka, logLevel, type Message, Partitioners, type Producer, type Transaction } from "kafkajs";
import {
  type Companion,
  type GroupOffset,
  KafkaFailure,
  type PartitionBatch,
  type ProducerLane,
} from "../types.ts";
import type { ProducerIdWatch } from "./client.ts";
import { whileCoordinatorBusy } from "./busy_retry.ts";
import { classify, classifyOffsets } from "./errors.ts";

export interface LaneOptions {
  /** HA: every request is a transaction under this id. Unset: a plain idempotent producer. */
  transactionalId?: string;
  /** HA: the Kafka client's watch on InitProducerId (createKafka's), for the activation's epoch. */
  producerIds?: ProducerIdWatch;
  requestTimeoutMs: number;
}

/** Epochs of one producer id: Kafka moves to a new producer id when they run out. */
const EPOCHS_PER_ID = 32_768n;

/**
 * The pair's epoch for an activation: the producer id, then the epoch, in one number. The
 * transaction coordinator hands out both in order for a transactional id (a new id, allocated
 * above the old, once the epochs of one run out), so every activation gets a greater number.
 */
export function pairEpoch(producerId: string, producerEpoch: number): number {
  const n = BigInt(producerId) * EPOCHS_PER_ID + BigInt(producerEpoch);
  if (n > BigInt(Number.MAX_SAFE_INTEGER) || n < 0n) {
    throw new KafkaFailure(
      "unavailable",
      `producer id ${producerId} is out of the range epochs are made from`,
    );
  }
  return Number(n);
}

/** A view of the bytes, not a copy (Buffer.from(uint8array) copies). */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export class KafkajsProducerLane implements ProducerLane {
  #producer?: Producer;
  #connecting?: Promise<Producer>;
  /** HA: a transactional producer connects only through activate(), never by itself. */
  #mayConnect: boolean;

  constructor(readonly kafka: Kafka, readonly opts: LaneOptions) {
    this.#mayConnect = opts.transactionalId === undefined;
  }

  get #transactional(): boolean {
    return this.opts.transactionalId !== undefined;
  }

  async activate(): Promise<number> {
    if (!this.#transactional) return 0;
    // A producer already connected has its id: only a fresh one sends InitProducerId (and fences).
    if (this.#producer || this.#connecting) await this.reset();
    this.#mayConnect = true;
    const watch = this.opts.producerIds;
    try {
      if (watch) watch.last = undefined;
      const producer = await this.#connect();
      // kafkajs sends the transactional InitProducerId only with the first transaction;
      // an empty one now bumps the producer epoch and fences the previous live at once.
      // Its answer is logged at debug only: this lane's client logs at debug meanwhile.
      if (watch) producer.logger().setLogLevel(logLevel.DEBUG);
      try {
        const tx = await producer.transaction();
        await tx.abort();
      } finally {
        if (watch) producer.logger().setLogLevel(logLevel.WARN);
      }
      if (!watch) return 0;
      if (!watch.last) {
        throw new KafkaFailure(
          "unavailable",
          "kafkajs did not report the producer id and epoch it was given",
        );
      }
      return pairEpoch(watch.last.producerId, watch.last.producerEpoch);
    } catch (e) {
      await this.reset();
      throw classify(e);
    }
  }

  async reset(): Promise<void> {
    if (this.#transactional) this.#mayConnect = false;
    const old = this.#producer ?? await this.#connecting?.catch(() => undefined);
    this.#producer = undefined;
    await old?.disconnect().catch(() => {});
  }

  async #connect(): Promise<Producer> {
    if (this.#producer) return this.#producer;
    this.#connecting ??= (async () => {
      if (!this.#mayConnect) throw new KafkaFailure("fenced", "this bridge is not the live node");
      const producer = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        transactionalId: this.opts.transactionalId,
        createPartitioner: Partitioners.DefaultPartitioner, // unused (batches arrive placed); silences a notice
        allowAutoTopicCreation: false,
        // A transaction right after a commit often meets CONCURRENT_TRANSACTIONS while the broker
        // writes the last one's markers, for a few ms. A first retry at 20 ms made that the HA ack
        // p99 (62 ms at 2k msg/s); from 2 ms, doubling, ten retries still span about 2 s.
        retry: { retries: 10, initialRetryTime: 2, maxRetryTime: 1000 },
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

  async produce(
    batches: PartitionBatch[],
    companion?: Companion,
    offsets: GroupOffset[] = [],
  ): Promise<string[]> {
    let producer: Producer;
    try {
      producer = await this.#connect();
    } catch (e) {
      throw classify(e); // nothing was sent
    }
    const request = {
      acks: -1,
      timeout: this.opts.requestTimeoutMs,
      topicMessages: toTopicMessages(batches),
    };
    let results: ProduceResult[];
    let extra: PartitionBatch[] = [], extraResults: ProduceResult[] = [];
    if (offsets.length > 0 && !this.#transactional) {
      throw new KafkaFailure("unavailable", "group offsets ride only in the pair's transactions (HA)");
    }
    if (this.#transactional) {
      let tx: Transaction;
      try {
        tx = await producer.transaction();
      } catch (e) {
        throw classify(e); // nothing was sent
      }
      try {
        const early = companion?.placeholder?.(batches);
        results = batches.length === 0 ? [] : await tx.sendBatch(
          early ? { ...request, topicMessages: toTopicMessages([...batches, early]) } : request,
        );
        extra = batches.length === 0 ? [] : companion?.(batches, baseOffsets(batches, results)) ?? [];
        // A second produce in the same transaction: it commits (or aborts) with the first.
        if (extra.length > 0) {
          extraResults = await tx.sendBatch({ ...request, topicMessages: toTopicMessages(extra) }).catch(
            (e) => {
              // The companion's topic is the bridge's own: its refusal is not about the client's records.
              const f = classify(e);
              throw f.kind === "unknown_topic" || f.kind === "bad_partition" || f.kind === "rejected"
                ? new KafkaFailure(
                  "unavailable",
                  `the transaction's companion records were refused: ${f.message}`,
                )
                : f;
            },
          );
        }
        for (const [groupId, topics] of byGroup(offsets)) {
          await whileCoordinatorBusy(() => tx.sendOffsets({ consumerGroupId: groupId, topics })).catch(
            (e) => {
              throw classifyOffsets(e);
            },
          );
        }
      } catch (e) {
        // Never committed, so never visible to read_committed readers (the bridge's own, kcat's
        // default): not written, whatever the error. read_uncommitted readers do see aborted records.
        try {
          await tx.abort();
        } catch (abortError) {
          throw new KafkaFailure(
            "unavailable",
            `could not abort a refused transaction (${classify(e).message}): ${classify(abortError).message}`,
          );
        }
        throw classify(e);
      }
      try {
        await tx.commit();
      } catch (e) {
        throw classify(e, { sent: true }); // the commit may have happened
      }
      if (extra.length > 0 && companion?.committed) {
        try {
          companion.committed(extra, baseOffsets(extra, extraResults));
        } catch { /* only a hint (where the companion records landed); the records themselves are written */ }
      }
    } else {
      try {
        results = await producer.sendBatch(request);
      } catch (e) {
        throw classify(e, { sent: true });
      }
    }
    return baseOffsets(batches, results);
  }
}

type ProduceResult = { topicName: string; partition: number; baseOffset?: string };

/** kafkajs' sendOffsets shape: per group, per topic, the partitions' next offsets. */
function byGroup(offsets: GroupOffset[]) {
  const groups = new Map<string, Map<string, { partition: number; offset: string }[]>>();
  for (const o of offsets) {
    let topics = groups.get(o.groupId);
    if (!topics) groups.set(o.groupId, topics = new Map());
    let partitions = topics.get(o.topic);
    if (!partitions) topics.set(o.topic, partitions = []);
    partitions.push({ partition: o.partition, offset: o.next });
  }
  return [...groups].map(([groupId, topics]) =>
    [groupId, [...topics].map(([topic, partitions]) => ({ topic, partitions }))] as const
  );
}

function baseOffsets(batches: PartitionBatch[], results: ProduceResult[]): string[] {
  const base = new Map<string, string | undefined>();
  for (const r of results) base.set(`${r.topicName}\u0000${r.partition}`, r.baseOffset);
  return batches.map((b) => {
    const offset = base.get(`${b.topic}\u0000${b.partition}`);
    // kafkajs can resolve without a partition it moved to another leader mid-retry; it
    // may have been written, and its sequence numbers are rewound: a failed request.
    if (offset === undefined) {
      throw new KafkaFailure(
        "timeout",
        `Kafka gave no result for ${b.topic}/${b.partition}; it may be written`,
      );
    }
    return offset;
  });
}

function toTopicMessages(batches: PartitionBatch[]): { topic: string; messages: Message[] }[] {
  const byTopic = new Map<string, Message[]>();
  for (const b of batches) {
    let messages = byTopic.get(b.topic);
    if (!messages) byTopic.set(b.topic, messages = []);
    for (const r of b.records) {
      messages.push({
        partition: b.partition,
        key: r.key ? asBuffer(r.key) : null,
        value: r.tombstone ? null : asBuffer(r.value),
        headers: r.headers,
      });
    }
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
}
