import assert from "node:assert/strict";
import { logLevel } from "kafkajs";
import { kafkajsLineLevel } from "./client.ts";

Deno.test("kafkajs log lines: failed requests at warn, a busy transaction coordinator (retried) at debug", () => {
  const busy =
    "The producer attempted to update a transaction while another concurrent operation on the same " +
    "transaction was ongoing";
  const response = "Response Produce(key: 0, version: 7)";
  assert.equal(kafkajsLineLevel(logLevel.ERROR, response, { error: "Connection timeout" }), "warn");
  assert.equal(kafkajsLineLevel(logLevel.WARN, "The group is rebalancing, re-joining", {}), "debug");
  assert.equal(
    kafkajsLineLevel(logLevel.ERROR, "Response AddOffsetsToTxn(key: 25, version: 1)", { error: busy }),
    "debug",
  );
  assert.equal(
    kafkajsLineLevel(logLevel.ERROR, `Failed to send messages: ${busy}`, { retryCount: 0 }),
    "debug",
  );
  assert.equal(kafkajsLineLevel(logLevel.ERROR, "Failed to send messages: Connection error", {}), "warn");
});
