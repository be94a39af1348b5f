import assert from "node:assert/strict";
import { logLevel } from "kafkajs";
import { kafkajsLineLevel } from "./client.ts";

Deno.test("kafkajs log lines: failed requests at warn, a busy transaction coordinator (retried) at debug", () => {
  const busy =
    "The producer attempted to update a transaction while another concurrent operation on the same " +
    "transaction was ongoing";
  assert.equal(kafkajsLineLevel(logLevel.ERROR, { error: "Connection timeout", broker: "b:9092" }), "warn");
  assert.equal(kafkajsLineLevel(logLevel.WARN, { error: "The group is rebalancing" }), "debug");
  assert.equal(kafkajsLineLevel(logLevel.ERROR, { error: busy }), "debug");
  assert.equal(kafkajsLineLevel(logLevel.ERROR, {}), "warn");
});
