/** Each bad input gets its documented error code; the connection survives and nothing crashes. */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { TestClient } from "./helpers/ws_client.ts";

Deno.test("bad input: each gets its error code, and the connection keeps working", async (t) => {
  const topic = uniqueTopic("bad");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start({
    set: ["server.maxFrameBytes=4096", "topics.deny=__*,secret*", "server.maxInflightPublishes=4"],
  });
  const c = await bridge.connect();
  const expectError = async (raw: string, code: string, id?: string) => {
    const before = c.frames.length;
    c.sendRaw(raw);
    const f = await c.waitFor((f) => c.frames.indexOf(f) >= before && (f.op === "error" || f.op === "nack"));
    assert.equal(f.code, code, JSON.stringify(f));
    assert.equal(typeof f.message, "string");
    assert.equal(typeof f.retryable, "boolean");
    if (id) assert.equal(f.id, id);
    return f;
  };
  try {
    assert.equal(c.welcome?.limits.maxFrameBytes, 4096, "the greeting states the limits");
    await t.step("malformed JSON", async () => void await expectError("{op:", "BAD_JSON"));
    await t.step("not an object", async () => void await expectError("42", "BAD_FRAME"));
    await t.step(
      "unknown op",
      async () => void await expectError('{"op":"fly","id":"u1"}', "UNKNOWN_OP", "u1"),
    );
    await t.step(
      "missing field",
      async () => void await expectError(`{"op":"publish","id":"m1","value":"x"}`, "MISSING_FIELD", "m1"),
    );
    await t.step("oversized frame", async () => {
      const f = await expectError(
        JSON.stringify({ op: "publish", id: "big", topic, value: "x".repeat(5000) }),
        "FRAME_TOO_LARGE",
      );
      assert.match(f.message, /exceeds the limit of 4096/);
    });
    await t.step(
      "unknown topic",
      async () =>
        void await expectError(
          JSON.stringify({ op: "publish", id: "t1", topic: "no-such-topic", value: "x" }),
          "UNKNOWN_TOPIC",
          "t1",
        ),
    );
    await t.step(
      "denied topic",
      async () =>
        void await expectError(
          JSON.stringify({ op: "publish", id: "t2", topic: "secret-x", value: "x" }),
          "TOPIC_DENIED",
          "t2",
        ),
    );
    await t.step(
      "unknown topic on subscribe",
      async () =>
        void await expectError(
          JSON.stringify({ op: "subscribe", id: "t3", topic: "no-such-topic" }),
          "UNKNOWN_TOPIC",
          "t3",
        ),
    );
    await t.step(
      "bad offset",
      async () =>
        void await expectError(
          JSON.stringify({ op: "subscribe", id: "o1", topic, from: { offsets: { "0": "-3" } } }),
          "BAD_OFFSET",
          "o1",
        ),
    );
    await t.step(
      "offset for a partition the topic lacks",
      async () =>
        void await expectError(
          JSON.stringify({ op: "subscribe", id: "o2", topic, from: { offsets: { "9": "0" } } }),
          "BAD_OFFSET",
          "o2",
        ),
    );
    await t.step("binary frame", async () => {
      const before = c.frames.length;
      c.ws.send(new Uint8Array([1, 2, 3]));
      const f = await c.waitFor((f) => c.frames.indexOf(f) >= before && f.op === "error");
      assert.equal(f.code, "BAD_FRAME");
    });
    await t.step(
      "unknown subscription",
      async () => void await expectError('{"op":"credit","sub":"nope","n":1}', "UNKNOWN_SUBSCRIPTION"),
    );
    await t.step("too many in-flight publishes", async () => {
      for (let i = 0; i < 10; i++) c.send({ op: "publish", id: `f${i}`, topic, value: `v${i}` });
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) => c.waitFor((f) => f.id === `f${i}`)),
      );
      const nacked = replies.filter((r) => r.op === "nack");
      assert.ok(nacked.length > 0, "publishes beyond the limit are nacked");
      for (const n of nacked) assert.deepEqual([n.code, n.retryable], ["TOO_MANY_INFLIGHT", true]);
      assert.ok(replies.filter((r) => r.op === "ack").length >= 4);
    });
    await t.step("the connection still works", async () => {
      const ack = await c.publish(topic, "still fine");
      assert.equal(ack.op, "ack");
      assert.equal((await c.request({ op: "ping" })).op, "pong");
    });
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("limits: connections beyond the limit get an error frame and close code 1013", async () => {
  const bridge = await BridgeProcess.start({ set: ["server.maxConnections=2"] });
  const a = await bridge.connect();
  const b = await bridge.connect();
  const extra = await TestClient.connect(bridge.url);
  try {
    const err = extra.frames[0];
    assert.deepEqual([err.op, err.code, err.retryable], ["error", "TOO_MANY_CONNECTIONS", true]);
    assert.equal((await extra.closed).code, 1013);
    await a.close();
    // A slot frees up once a client leaves.
    await new Promise((r) => setTimeout(r, 200));
    const again = await bridge.connect();
    assert.equal(again.welcome?.op, "welcome");
    await again.close();
  } finally {
    await Promise.all([a.close(), b.close(), extra.close()]);
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("http: /healthz, /readyz and /metrics", async () => {
  const bridge = await BridgeProcess.start();
  try {
    const health = await fetch(`${bridge.httpUrl}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: "ok" }]);
    const ready = await fetch(`${bridge.httpUrl}/readyz`);
    const body = await ready.json();
    assert.equal(ready.status, 200);
    assert.deepEqual([body.ready, body.role, body.epoch, body.kafka], [true, "live", 0, "up"]);
    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    for (
      const name of [
        "edge_bridge_connections",
        "edge_bridge_publishes_total",
        "edge_bridge_acks_total",
        "edge_bridge_nacks_total",
        "edge_bridge_deliveries_total",
        "edge_bridge_publish_ack_seconds",
        "edge_bridge_kafka_produce_seconds",
        "edge_bridge_kafka_produce_records",
        "edge_bridge_kafka_errors_total",
        "edge_bridge_consumer_lag",
        "edge_bridge_kafka_up",
      ]
    ) assert.match(metrics, new RegExp(`# TYPE ${name} `), name);
    const missing = await fetch(`${bridge.httpUrl}/nope`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
  } finally {
    assert.equal(await bridge.stop(), 0);
  }
});
