/** classify() against the error classes kafkajs really throws, built the way kafkajs builds them. */
import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import type * as KafkaJS from "kafkajs";
import { KafkaFailure } from "../types.ts";
import { classify, classifyOffsets } from "./errors.ts";

// kafkajs spreads its error classes into module.exports, which ESM named imports do not see.
const {
  KafkaJSConnectionError,
  KafkaJSNumberOfRetriesExceeded,
  KafkaJSProtocolError,
  KafkaJSRequestTimeoutError,
} = kafkajs as unknown as typeof KafkaJS;

/** kafkajs' createErrorFromCode: a protocol error carrying the broker's error type. */
function protocolError(type: string, retriable = false): Error {
  return new KafkaJSProtocolError({ type, code: 0, retriable, message: `broker said ${type}` } as never);
}

/** What the retrier throws when it gives up: the last attempt's error as `cause`. */
function retriesExceeded(last: Error): Error {
  return new KafkaJSNumberOfRetriesExceeded(last, { retryCount: 5, retryTime: 1000 });
}

Deno.test("classify: a timeout after the request left means 'may be written'", () => {
  const timeout = new KafkaJSRequestTimeoutError("Request Produce(key: 0, version: 7) timed out");
  assert.equal(classify(timeout, { sent: true }).kind, "timeout");
  assert.equal(classify(retriesExceeded(timeout), { sent: true }).kind, "timeout");
  assert.equal(
    classify(new KafkaJSConnectionError("Connection error: ECONNRESET"), { sent: true }).kind,
    "timeout",
  );
});

Deno.test("classify: before anything was sent, the same errors mean 'not written'", () => {
  assert.equal(classify(new KafkaJSConnectionError("Connection error: ECONNREFUSED")).kind, "unavailable");
  assert.equal(classify(new KafkaJSRequestTimeoutError("timed out")).kind, "unavailable");
});

Deno.test("classify: broker error codes are read through the cause chain", () => {
  const cases: [string, KafkaFailure["kind"]][] = [
    ["MESSAGE_TOO_LARGE", "too_large"],
    ["RECORD_LIST_TOO_LARGE", "too_large"],
    ["INVALID_RECORD", "invalid_record"],
    ["CORRUPT_MESSAGE", "invalid_record"],
    ["UNKNOWN_TOPIC_OR_PARTITION", "unknown_topic"],
    ["TOPIC_AUTHORIZATION_FAILED", "rejected"],
    ["PRODUCER_FENCED", "fenced"],
    ["INVALID_PRODUCER_EPOCH", "fenced"],
  ];
  for (const [type, kind] of cases) {
    assert.equal(classify(protocolError(type), { sent: true }).kind, kind, type);
    assert.equal(
      classify(retriesExceeded(protocolError(type, true)), { sent: true }).kind,
      kind,
      `wrapped ${type}`,
    );
  }
});

Deno.test("classify: a retriable broker error that outlived the retries, after sending, is 'may be written'", () => {
  // NOT_ENOUGH_REPLICAS_AFTER_APPEND: the leader appended the batch but could not replicate it in time.
  const e = retriesExceeded(protocolError("NOT_ENOUGH_REPLICAS_AFTER_APPEND", true));
  assert.equal(classify(e, { sent: true }).kind, "timeout");
  assert.equal(classify(protocolError("NOT_LEADER_OR_FOLLOWER", true), { sent: true }).kind, "timeout");
});

Deno.test("classify: messages say what happened, and KafkaFailures pass through", () => {
  const f = classify(protocolError("MESSAGE_TOO_LARGE"));
  assert.match(f.message, /MESSAGE_TOO_LARGE/);
  const own = new KafkaFailure("bad_partition", "x");
  assert.equal(classify(own, { sent: true }), own);
  assert.match(classify(new Error("boom"), { sent: true }).message, /boom.*may or may not be written/);
});

Deno.test("errors: a group offset commit Kafka refuses is about that commit only; fencing and outages stay as they are", () => {
  const kafkaError = (type: string) => Object.assign(new Error(type), { type });
  assert.equal(classifyOffsets(kafkaError("GROUP_AUTHORIZATION_FAILED")).kind, "rejected");
  assert.equal(classifyOffsets(kafkaError("UNKNOWN_TOPIC_OR_PARTITION")).kind, "rejected");
  assert.equal(classifyOffsets(kafkaError("TOPIC_AUTHORIZATION_FAILED")).kind, "rejected");
  assert.equal(classifyOffsets(kafkaError("INVALID_PRODUCER_EPOCH")).kind, "fenced");
  assert.equal(classifyOffsets(kafkaError("PRODUCER_FENCED")).kind, "fenced");
  const busy = classifyOffsets(protocolError("CONCURRENT_TRANSACTIONS", true));
  assert.equal(busy.kind, "unavailable", "refused before anything was added: not committed, commit again");
  assert.match(busy.message, /was not committed/);
});
