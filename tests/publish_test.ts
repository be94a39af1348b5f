/** Publishing through a real bridge process into the real broker, checked with kcat. */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, recordsByPosition } from "./helpers/kcat.ts";

Deno.test("publish: every ack is in Kafka exactly once, at the acked position, in per-key order", async () => {
  const topic = uniqueTopic("pub");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  const clients = await Promise.all([bridge.connect(), bridge.connect()]);
  try {
    const N = 300;
    // Two clients publish concurrently (so their publishes share Kafka batches), each over 5 keys.
    const acks = await Promise.all(clients.map(async (c, ci) => {
      c.send({ op: "hello", clientId: `client-${ci}` });
      const replies = [];
      // Windows of 100 stay under the bridge's in-flight limit (256 by default).
      for (let start = 0; start < N; start += 100) {
        const ids: string[] = [];
        for (let i = start; i < start + 100; i++) {
          const id = `c${ci}-${i}`;
          ids.push(id);
          c.send({ op: "publish", id, topic, key: `k${i % 5}`, value: `c${ci} n${i}` });
        }
        replies.push(...await Promise.all(ids.map((id) => c.waitFor((f) => f.id === id))));
      }
      return replies;
    }));
    const all = acks.flat();
    assert.equal(all.length, 2 * N);
    for (const a of all) assert.equal(a.op, "ack", JSON.stringify(a));

    const records = await kcatRead(topic);
    assert.equal(records.length, 2 * N, "Kafka holds exactly the acked records");
    const recordAt = recordsByPosition(records);
    for (const a of all) {
      const r = recordAt(a.partition, a.offset);
      assert.ok(r, `ack ${a.id} names ${a.partition}/${a.offset}, which Kafka does not hold`);
      const [ci, i] = a.id.slice(1).split("-");
      assert.equal(r.payload, `c${ci} n${i}`);
      assert.equal(r.headers["eb-message-id"], `client-${ci}:${a.id}`);
      assert.equal(r.headers["eb-client-id"], `client-${ci}`);
      assert.equal(a.epoch, 0);
      assert.equal(a.topic, topic);
    }
    const payloads = records.map((r) => r.payload);
    assert.equal(new Set(payloads).size, payloads.length, "no record is duplicated");
    // Per key and client, Kafka order is publish order.
    for (let ci = 0; ci < 2; ci++) {
      for (let k = 0; k < 5; k++) {
        const seq = records.filter((r) => r.key === `k${k}` && r.payload!.startsWith(`c${ci} `))
          .map((r) => Number(r.payload!.split(" n")[1]));
        assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `order for client ${ci} key k${k}`);
        assert.equal(
          new Set(records.filter((r) => r.key === `k${k}`).map((r) => r.partition)).size,
          1,
          "a key stays on one partition",
        );
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("publish: JSON, base64 and text payloads, explicit partition and client headers", async () => {
  const topic = uniqueTopic("enc");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start();
  const c = await bridge.connect();
  try {
    const json = await c.publish(topic, "", { value: { a: [1, 2], b: "x" }, encoding: "json", partition: 1 });
    const bin = await c.publish(topic, "AP8BgA==", {
      encoding: "base64",
      partition: 1,
      headers: { trace: "t-1" },
    });
    const txt = await c.publish(topic, "plain", { partition: 0, key: "a2V5", keyEncoding: "base64" });
    assert.deepEqual([json.op, json.partition, json.offset], ["ack", 1, "0"]);
    assert.deepEqual([bin.op, bin.partition, bin.offset], ["ack", 1, "1"]);
    assert.deepEqual([txt.op, txt.partition, txt.offset], ["ack", 0, "0"]);
    const records = await kcatRead(topic);
    const p1 = records.filter((r) => r.partition === 1).sort((a, b) => a.offset - b.offset);
    assert.deepEqual(JSON.parse(p1[0].payload!), { a: [1, 2], b: "x" });
    assert.equal(p1[1].headers.trace, "t-1");
    assert.equal(records.find((r) => r.partition === 0)!.key, "key");
    const bad = await c.publish(topic, "x", { partition: 7 });
    assert.deepEqual([bad.op, bad.code, bad.retryable], ["nack", "BAD_PARTITION", false]);
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});
