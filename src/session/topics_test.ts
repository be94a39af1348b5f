import assert from "node:assert/strict";
import { TopicPolicy } from "./topics.ts";

Deno.test("topics: allow, deny and the client prefix", () => {
  const p = new TopicPolicy({
    allow: ["orders.*", "test"],
    deny: ["orders.secret*", "__*"],
    clientPrefix: "kafka.",
  });
  assert.deepEqual(p.resolve("kafka.test"), { ok: true, kafkaTopic: "test" });
  assert.deepEqual(p.resolve("kafka.orders.eu"), { ok: true, kafkaTopic: "orders.eu" });
  assert.equal(p.toClient("orders.eu"), "kafka.orders.eu");
  const denied = p.resolve("kafka.orders.secret-1");
  assert.ok(!denied.ok && denied.code === "TOPIC_DENIED");
  const notAllowed = p.resolve("kafka.other");
  assert.ok(!notAllowed.ok && notAllowed.code === "TOPIC_DENIED");
  const noPrefix = p.resolve("test");
  assert.ok(!noPrefix.ok && /must start with "kafka\."/.test(noPrefix.message));
  const illegal = p.resolve("kafka.te st");
  assert.ok(!illegal.ok && illegal.code === "BAD_FIELD");
});

Deno.test("topics: the defaults expose everything but internal topics", () => {
  const p = new TopicPolicy({ allow: ["*"], deny: ["__*"], clientPrefix: "" });
  assert.ok(p.resolve("anything").ok);
  assert.ok(!p.resolve("__consumer_offsets").ok);
});
