/**
 * Maps kafkajs errors onto the protocol's outcomes, and above all onto the one
 * question a client needs answered: was the record written?
 *
 * kafkajs wraps errors (a retry that gave up wraps the last attempt's error in
 * `cause`), so the whole chain is read. A Kafka error code answered by the broker
 * is taken as the outcome: kafkajs retries with the same sequence numbers, so had an
 * earlier attempt been written, the broker would have answered the retry as a
 * duplicate, with success. (Only a topic deleted, or its ACL changed, between two
 * attempts escapes this, and kafkajs does not report earlier attempts.) Anything else
 * that happens after a request may have left (a timeout, a dropped connection)
 * leaves the outcome unknown.
 */
import { KafkaFailure } from "../types.ts";

/** Kafka's answers to a producer whose transactional id was taken over by a newer one. */
const FENCED_TYPES = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "INVALID_PRODUCER_ID_MAPPING",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
]);

/** The batch is refused for what is in it: split it to find the record at fault. */
const CONTENT_TYPES: Record<string, "too_large" | "invalid_record"> = {
  MESSAGE_TOO_LARGE: "too_large",
  RECORD_LIST_TOO_LARGE: "too_large",
  INVALID_RECORD: "invalid_record",
  CORRUPT_MESSAGE: "invalid_record",
};

/** Refusals that no retry of the same record can change. */
const REJECTED_TYPES = new Set([
  "TOPIC_AUTHORIZATION_FAILED",
  "CLUSTER_AUTHORIZATION_FAILED",
  "INVALID_TOPIC_EXCEPTION",
  "POLICY_VIOLATION",
  "INVALID_REQUIRED_ACKS",
]);

interface ErrorLike {
  type?: string;
  message?: string;
  cause?: unknown;
  originalError?: unknown;
}

/** The error and what it wraps, outermost first. */
function chain(e: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let cur = e as ErrorLike | undefined;
  while (cur && typeof cur === "object" && out.length < 8 && !out.includes(cur)) {
    out.push(cur);
    cur = (cur.cause ?? cur.originalError) as ErrorLike | undefined;
  }
  return out;
}

/** The Kafka protocol error type (e.g. "CONCURRENT_TRANSACTIONS") behind `e`, if Kafka gave one. */
export function errorType(e: unknown): string | undefined {
  return chain(e).find((x) => typeof x.type === "string")?.type;
}

export interface ClassifyOptions {
  /** The request may have reached Kafka: an error without a Kafka answer then means "may be written". */
  sent?: boolean;
}

export function classify(e: unknown, opts: ClassifyOptions = {}): KafkaFailure {
  if (e instanceof KafkaFailure) return e;
  const message = chain(e)[0]?.message ?? String(e);
  const type = errorType(e);
  if (type !== undefined) {
    if (FENCED_TYPES.has(type)) {
      return new KafkaFailure("fenced", `a newer live holds the pair's transactional id (${type})`);
    }
    if (type === "UNKNOWN_TOPIC_OR_PARTITION") return new KafkaFailure("unknown_topic", message);
    const content = CONTENT_TYPES[type];
    if (content) return new KafkaFailure(content, `Kafka refused the batch: ${type}`);
    if (REJECTED_TYPES.has(type)) return new KafkaFailure("rejected", `Kafka refused the record: ${type}`);
  }
  if (opts.sent) {
    return new KafkaFailure(
      "timeout",
      `Kafka did not confirm the write (${message}); the record may or may not be written`,
    );
  }
  return new KafkaFailure("unavailable", `Kafka is unavailable: ${message}`);
}

/**
 * A group offset commit in a transaction: fencing and outages are about Kafka (the sink reacts
 * to those), anything else Kafka said is about this commit only (the group, its topic, the
 * bridge's rights), and is "rejected", so that it never moves the sink.
 */
export function classifyOffsets(e: unknown): KafkaFailure {
  const type = errorType(e);
  if (type === "CONCURRENT_TRANSACTIONS") {
    // The lane aborts a transaction whose sendOffsets failed: certainly not committed.
    return new KafkaFailure(
      "unavailable",
      "Kafka was still finishing the pair's previous transaction; the offset was not committed: commit again",
    );
  }
  const refusal = type !== undefined && !FENCED_TYPES.has(type) &&
    /AUTHORIZATION|^GROUP_|^UNKNOWN_TOPIC|^INVALID_(?!PRODUCER)|^UNSTABLE_OFFSET|^OFFSET_METADATA/.test(type);
  if (refusal) return new KafkaFailure("rejected", `Kafka refused the group offset commit: ${type}`);
  return classify(e, { sent: true });
}
