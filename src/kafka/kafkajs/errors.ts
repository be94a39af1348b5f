/** Maps kafkajs errors onto the protocol's small set of outcomes. */
import { KafkaFailure } from "../types.ts";

const UNAVAILABLE_NAMES = new Set([
  "KafkaJSConnectionError",
  "KafkaJSConnectionClosedError",
  "KafkaJSNumberOfRetriesExceeded",
  "KafkaJSBrokerNotFound",
  "KafkaJSRequestTimeoutError",
  "KafkaJSLockTimeout",
  "KafkaJSMetadataNotLoaded",
  "KafkaJSNonRetriableError",
]);

/** Kafka's answers to a producer whose transactional id was taken over by a newer one. */
const FENCED_TYPES = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "INVALID_PRODUCER_ID_MAPPING",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
]);

export function classify(e: unknown): KafkaFailure {
  if (e instanceof KafkaFailure) return e;
  const err = e as {
    name?: string;
    type?: string;
    message?: string;
    retriable?: boolean;
    originalError?: unknown;
  };
  const cause = err.originalError ? (err.originalError as { type?: string; name?: string }) : undefined;
  const type = err.type ?? cause?.type;
  if (type !== undefined && FENCED_TYPES.has(type)) {
    return new KafkaFailure("fenced", `a newer live holds the pair's transactional id (${type})`);
  }
  if (type === "UNKNOWN_TOPIC_OR_PARTITION") {
    return new KafkaFailure("unknown_topic", err.message ?? "unknown topic");
  }
  if (
    type === "MESSAGE_TOO_LARGE" || type === "RECORD_LIST_TOO_LARGE" || type === "INVALID_RECORD" ||
    type === "TOPIC_AUTHORIZATION_FAILED" || type === "INVALID_TOPIC_EXCEPTION" || type === "CORRUPT_MESSAGE"
  ) {
    return new KafkaFailure("rejected", `Kafka rejected the record: ${type}`);
  }
  if (UNAVAILABLE_NAMES.has(err.name ?? "") || err.retriable || cause) {
    return new KafkaFailure("unavailable", `Kafka is unavailable: ${err.message ?? String(e)}`);
  }
  return new KafkaFailure("unavailable", `Kafka error: ${err.message ?? String(e)}`);
}
