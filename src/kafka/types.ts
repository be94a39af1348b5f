/**
 * What the bridge needs from Kafka, as small interfaces. kafkajs sits behind
 * them (src/kafka/kafkajs/), so another client library can be measured later
 * without touching sessions or the server.
 */
import type { StartPosition, SubscribeMode, WireRecord } from "../protocol/mod.ts";

export interface OutgoingRecord {
  topic: string;
  partition?: number;
  key?: Uint8Array;
  value: Uint8Array;
  headers: Record<string, string>;
  /** Exactly-once publishing: the client and its sequence number (src/dedupe/). */
  sequence?: { clientId: string; seq: number };
  /** Written with a null value (`value` is ignored): compaction then drops the key. */
  tombstone?: boolean;
}

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

/** Writes records; `send` resolves only once Kafka has acknowledged the record (acks=all). */
export interface KafkaSink {
  send(record: OutgoingRecord): Promise<RecordPosition>;
  /**
   * HA only: take over the pair's transactional id, which fences every older
   * holder (a zombie live's writes then fail). Until then, and after being
   * fenced or deactivated, sends fail with kind "fenced" (after a Kafka error
   * while live: "unavailable", until the HA node activates again).
   */
  activate(): Promise<number>;
  /** HA only: let go of the producer (stepping down). */
  deactivate(): Promise<void>;
  /** HA only: let go of the producer at once, not waiting for requests in flight; says what it dropped. */
  abandon(): string[];
  /**
   * HA only: commits a group's offset in one of the pair's transactions (with the next records,
   * or alone), so that a zombie's commit is fenced like its writes. Resolves once committed.
   */
  commitOffset?(offset: GroupOffset): Promise<void>;
  /** Waits for records already handed to the sink, then disconnects. */
  close(): Promise<void>;
}

/** One partition's records of a produce request, in order: record i lands at baseOffset + i. */
export interface PartitionBatch {
  topic: string;
  partition: number;
  records: OutgoingRecord[];
}

/**
 * HA: records that belong in the same transaction as `batches`, once Kafka has placed
 * them (their base offsets, in order): the dedupe log's positions. Empty: none.
 */
export type Companion = ((batches: PartitionBatch[], bases: string[]) => PartitionBatch[]) & {
  /**
   * A record to send with the request's own batches, to the partition the companion records will
   * go to, when the request carries records the companion writes for: it adds that partition to
   * the transaction in the first round trip, which saves the second produce one (AddPartitionsToTxn).
   */
  placeholder?(batches: PartitionBatch[]): PartitionBatch | undefined;
  /** The transaction committed: the companion batches' base offsets, in the order returned. */
  committed?(batches: PartitionBatch[], bases: string[]): void;
};

/**
 * One Kafka producer (idempotent; transactional in HA mode) as the sink drives it:
 * whole requests, one at a time. The sink keeps several lanes to have several
 * requests in flight, and sends a partition through one lane only, which keeps
 * each partition's order.
 */
/**
 * A consumer group's offset committed in the pair's transaction (HA): the transactional id's
 * fencing then stops a zombie's commits as it stops its writes.
 */
export interface GroupOffset {
  groupId: string;
  topic: string;
  partition: number;
  /** The next offset the group reads (the processed record's offset + 1). */
  next: string;
}

export interface ProducerLane {
  /**
   * Writes every batch (in one transaction in HA mode) and resolves with each batch's
   * base offset, in the order given. Throws a KafkaFailure: "timeout" whenever the
   * request may have been written; "unavailable" or "fenced" when none of it was; any
   * other kind is Kafka's refusal of one of the batches, which kafkajs reports for the
   * whole request, so with several batches the others may have been written.
   */
  produce(batches: PartitionBatch[], companion?: Companion, offsets?: GroupOffset[]): Promise<string[]>;
  /**
   * HA: take over the transactional id, fencing older holders, before serving. Resolves with
   * the activation's epoch: Kafka's producer id and epoch for the id, as one number that the
   * transaction coordinator orders (each activation of the pair gets a greater one).
   */
  activate(): Promise<number>;
  /** Drops the producer; the next produce() connects with a fresh producer id. */
  reset(): Promise<void>;
}

export interface TopicInfo {
  name: string;
  partitions: number;
  /** The largest record batch Kafka accepts for the topic (its max.message.bytes). */
  maxMessageBytes: number;
  /** cleanup.policy includes compact: Kafka refuses records without a key. */
  compacted?: boolean;
}

export interface KafkaCatalog {
  /** Partition count and limits of a topic, or null when Kafka does not know it. Cached. */
  topic(name: string): Promise<TopicInfo | null>;
  /** What topic() has cached, without waiting: undefined when it would have to ask Kafka. */
  cachedTopic(name: string): TopicInfo | null | undefined;
  /** Forgets the cached answer, after Kafka disagreed with it. */
  forgetTopic(name: string): void;
  offsetsForTimestamp(topic: string, timestamp: number): Promise<Record<string, string>>;
  /** The next offset to be written, per partition (the high watermark). */
  endOffsets(topic: string): Promise<Record<string, string>>;
  /** The offset a consumer group has committed for a partition (the next to read), if any. */
  groupCommitted(groupId: string, topic: string, partition: number): Promise<string | undefined>;
  /** The first offset Kafka still holds, per partition (retention deletes below it). */
  earliestOffsets(topic: string): Promise<Record<string, string>>;
  /** Throws when the cluster cannot be reached. */
  ping(): Promise<void>;
  /**
   * Creates the topic unless it exists (the bridge's own topics only: it never creates clients'
   * topics). Returns the topic's values of the `configs` keys: those given when it was made here,
   * or those Kafka reports for a topic that was there (never altered; the caller judges them).
   */
  ensureTopic(
    name: string,
    partitions: number,
    configs: Record<string, string>,
  ): Promise<Record<string, string>>;
  close(): Promise<void>;
}

export interface Delivery extends WireRecord {
  topic: string;
  /**
   * On the last record of a fetched batch: the offset after the batch, transaction markers
   * included (kafkajs hands out records only), so a reader can step over the markers.
   */
  batchNext?: string;
}

export interface SourceOptions {
  topic: string;
  mode: SubscribeMode;
  /** Kafka consumer group id (already prefixed); unique per subscription for broadcast. */
  groupId: string;
  from: StartPosition;
  /** Offsets to start from per partition, resolved from `from` when it names offsets or a timestamp. */
  startOffsets?: Record<string, string>;
  /**
   * Broadcast: `startOffsets` names every partition the topic had; one that shows up later was
   * created since, so all its records are new: read it from its start.
   */
  newPartitionsFromStart?: boolean;
}

/**
 * Hands one message to its subscriber. Resolves true once it is sent, false when
 * the subscription ended. It may wait for credit for as long as it likes: the
 * source keeps the Kafka group alive meanwhile and fetches nothing more. When
 * `cancel` aborts (the partition was revoked), a message still waiting is dropped.
 */
export type DeliverFn = (d: Delivery, cancel?: AbortSignal) => Promise<boolean>;

export interface SourceEvents {
  onLag?(partition: number, lag: number): void;
  /** The consumer failed for good; the subscription is over. */
  onFatal?(error: Error): void;
  /** Group mode: the partitions assigned at each join of the group (commits are checked against them). */
  onAssignment?(partitions: number[]): void;
}

export interface SourceHandle {
  /** Commits `offset + 1` for the partition (group mode). */
  commit(partition: number, offset: string): Promise<void>;
  stop(): Promise<void>;
}

export interface KafkaSource {
  open(opts: SourceOptions, deliver: DeliverFn, events?: SourceEvents): Promise<SourceHandle>;
}

/** Errors the Kafka layer raises, classified for the protocol. */
export class KafkaFailure extends Error {
  constructor(
    /**
     * timeout: may have been written. too_large and invalid_record: Kafka refused a
     * batch because of what is in it. Every other kind: certainly not written.
     */
    readonly kind:
      | "unavailable"
      | "timeout"
      | "rejected"
      | "too_large"
      | "invalid_record"
      | "unknown_topic"
      | "bad_partition"
      | "fenced",
    message: string,
  ) {
    super(message);
    this.name = "KafkaFailure";
  }
}
