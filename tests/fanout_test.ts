/**
 * Broadcast fan-out through the hub, with a real bridge and broker: one Kafka reader
 * per topic whatever the number of subscribers, subscribers that pause alone, catch
 * up from Kafka without a gap or a duplicate at the seam, are told about records
 * retention deleted, start from offsets or a timestamp while the tail moves, and
 * receive partitions added while they are attached. kcat checks what Kafka holds.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { tcpConnectionsTo } from "../scripts/proc_stats.ts";
import { BridgeProcess } from "./helpers/bridge.ts";
import { brokers, createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce, kcatRead } from "./helpers/kcat.ts";
import { until } from "./helpers/wait.ts";
import type { Frame, TestClient } from "./helpers/ws_client.ts";

const brokerPort = Number(brokers().split(",")[0].split(":").pop());

function positions(frames: Frame[]): string[] {
  return frames.map((f) => `${f.partition}/${f.offset}`);
}

/**
 * Every record Kafka holds from `from` on (per partition) reached the subscriber exactly once, in
 * offset order. Kafka is read until it holds at least `atLeast` records (what the test saw acked).
 */
async function assertExactly(
  c: TestClient,
  sub: string,
  topic: string,
  atLeast: number,
  from: (p: number) => number = () => 0,
) {
  const all = await kcatRead(topic, brokers(), atLeast);
  const expected = all.filter((r) => r.offset >= from(r.partition));
  await until(
    `${sub} to receive ${expected.length} records`,
    () => c.messages(sub).length >= expected.length,
    30_000,
  )
    .catch((e) => {
      const got = c.messages(sub);
      throw new Error(`${e.message}; got ${got.length}, the last at ${positions(got.slice(-3))}`);
    });
  await new Promise((r) => setTimeout(r, 500)); // a duplicate would show up now
  const got = c.messages(sub);
  const seen = positions(got);
  const twice = seen.filter((x, i) => seen.indexOf(x) !== i);
  assert.deepEqual(
    twice,
    [],
    `${sub}: records delivered twice (${seen.length} deliveries, Kafka holds ${expected.length})`,
  );
  assert.deepEqual([...seen].sort(), positions(expected).sort(), `${sub}: every record once`);
  for (const p of new Set(got.map((f) => f.partition))) {
    const offsets = got.filter((f) => f.partition === p).map((f) => Number(f.offset));
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), `${sub}: partition ${p} in order`);
  }
}

Deno.test("fanout: one Kafka reader serves every subscriber; a slow one pauses alone", async () => {
  const topic = uniqueTopic("fan");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  const clients: TestClient[] = [];
  try {
    const [pub, fast, slow] = await Promise.all([1, 2, 3].map(() => bridge.connect()));
    clients.push(pub, fast, slow);
    await fast.subscribe(topic, { sub: "fast", mode: "broadcast", credit: 1000 });
    await slow.subscribe(topic, { sub: "slow", mode: "broadcast", credit: 1 });
    for (let i = 0; i < 100; i++) {
      pub.send({ op: "publish", id: `a${i}`, topic, key: `k${i}`, value: `a${i}` });
    }
    await until("100 acks", () => pub.frames.filter((f) => f.op === "ack").length === 100);
    await assertExactly(fast, "fast", topic, 100);
    assert.equal(slow.messages("slow").length, 1, "the slow subscriber got its one credit's worth");
    const connectionsBefore = tcpConnectionsTo(bridge.pid, brokerPort);

    const more = await Promise.all(Array.from({ length: 50 }, () => bridge.connect()));
    clients.push(...more);
    await Promise.all(
      more.map((c, i) => c.subscribe(topic, { sub: `m${i}`, mode: "broadcast", credit: 1000 })),
    );
    for (let i = 0; i < 10; i++) {
      pub.send({ op: "publish", id: `b${i}`, topic, key: `k${i}`, value: `b${i}` });
    }
    await until(
      "the 50 new subscribers to get the 10 new records",
      () => more.every((c, i) => c.messages(`m${i}`).length === 10),
    );
    assert.equal(
      tcpConnectionsTo(bridge.pid, brokerPort),
      connectionsBefore,
      "50 more subscribers: no more broker connections",
    );
    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    assert.match(metrics, new RegExp(`edge_bridge_hub_subscribers\\{topic="${topic}"\\} 52`));
    slow.send({ op: "credit", sub: "slow", n: 1000 });
    await assertExactly(slow, "slow", topic, 110);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
  }
});

Deno.test("fanout: a subscriber that falls out of the window catches up from Kafka with no gap or duplicate at the seam", async () => {
  const topic = uniqueTopic("seam");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start({
    set: ["hub.windowRecords=10", "server.maxInflightPublishes=1000"],
  });
  const [pub, behind] = await Promise.all([bridge.connect(), bridge.connect()]);
  try {
    await behind.subscribe(topic, { sub: "behind", mode: "broadcast", credit: 1 });
    for (let i = 0; i < 300; i++) {
      pub.send({ op: "publish", id: `r${i}`, topic, key: `k${i % 7}`, value: `r${i}` });
    }
    await until("300 acks", () => pub.frames.filter((f) => f.op === "ack").length === 300);
    // Far behind a 10-record window now; credit starts a catch-up reader, then the window takes over.
    behind.send({ op: "credit", sub: "behind", n: 5000 });
    await assertExactly(behind, "behind", topic, 300);
    for (let i = 0; i < 20; i++) {
      pub.send({ op: "publish", id: `s${i}`, topic, key: `k${i % 7}`, value: `s${i}` });
    }
    await until("320 acks", () => pub.frames.filter((f) => f.op === "ack").length === 320);
    await assertExactly(behind, "behind", topic, 320);
    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    assert.match(metrics, /edge_bridge_hub_catchup_readers 0/, "the catch-up reader was given back");
  } finally {
    await Promise.all([pub.close(), behind.close()]);
    await bridge.stop();
  }
});

Deno.test("fanout: records deleted by retention are reported, then delivery goes on from the first offset available", async () => {
  const topic = uniqueTopic("retention");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, Array.from({ length: 30 }, (_, i) => `v${i}`));
  const kafka = new Kafka({ brokers: brokers().split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.fetchTopicMetadata({ topics: [topic] }); // kafkajs deletes only for topics it has metadata of
  await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: "12" }] });
  await admin.disconnect();
  const bridge = await BridgeProcess.start();
  const c = await bridge.connect();
  try {
    await c.subscribe(topic, { sub: "old", mode: "broadcast", from: { offsets: { "0": "3" } }, credit: 100 });
    const skipped = await c.waitFor((f) => f.op === "skipped");
    assert.deepEqual(
      { sub: skipped.sub, partition: skipped.partition, from: skipped.from, to: skipped.to },
      { sub: "old", partition: 0, from: "3", to: "12" },
    );
    await assertExactly(c, "old", topic, 18, () => 12);
    assert.ok(c.frames.indexOf(skipped) < c.frames.indexOf(c.messages("old")[0]), "told before the records");
  } finally {
    await c.close();
    await bridge.stop();
  }
});

Deno.test("fanout: subscribing from offsets and from a timestamp while the tail moves", async () => {
  const topic = uniqueTopic("from");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, Array.from({ length: 40 }, (_, i) => `early${i}`));
  await new Promise((r) => setTimeout(r, 50));
  const since = Date.now();
  await new Promise((r) => setTimeout(r, 50));
  await kcatProduce(topic, Array.from({ length: 20 }, (_, i) => `late${i}`));
  const bridge = await BridgeProcess.start({ set: ["hub.windowRecords=5"] });
  const [pub, a, b] = await Promise.all([bridge.connect(), bridge.connect(), bridge.connect()]);
  try {
    let publishing = true;
    const tail = (async () => {
      for (let i = 0; publishing; i++) {
        await pub.publish(topic, `moving${i}`, { id: `m${i}` });
      }
    })();
    await a.subscribe(topic, {
      sub: "offsets",
      mode: "broadcast",
      from: { offsets: { "0": "25" } },
      credit: 10_000,
    });
    await b.subscribe(topic, { sub: "time", mode: "broadcast", from: { timestamp: since }, credit: 10_000 });
    await new Promise((r) => setTimeout(r, 1500));
    publishing = false;
    await tail;
    const written = 60 + pub.frames.filter((f) => f.op === "ack").length;
    await assertExactly(a, "offsets", topic, written, () => 25);
    await assertExactly(b, "time", topic, written, () => 40);
    assert.equal(b.messages("time")[0].value, "late0");
  } finally {
    await Promise.all([pub.close(), a.close(), b.close()]);
    await bridge.stop();
  }
});

Deno.test("fanout: partitions added to a topic reach the subscribers attached to it", async () => {
  const topic = uniqueTopic("grow");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start({ set: ["kafka.consumer.metadataMaxAgeMs=1000"] });
  const c = await bridge.connect();
  const kafka = new Kafka({ brokers: brokers().split(","), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await c.subscribe(topic, { sub: "s", mode: "broadcast", credit: 1000 });
    await kcatProduce(topic, ["before"], { partition: 1 });
    await until("the first record", () => c.messages("s").length === 1);
    await admin.connect();
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    await kcatProduce(topic, ["new-0", "new-1", "new-2"], { partition: 2 });
    await assertExactly(c, "s", topic, 4);
    assert.deepEqual(c.messages("s").filter((f) => f.partition === 2).map((f) => f.value), [
      "new-0",
      "new-1",
      "new-2",
    ]);
  } finally {
    await admin.disconnect();
    await c.close();
    await bridge.stop();
  }
});

Deno.test("fanout: a broadcast subscription beyond hub.maxTopics is refused with a clear code", async () => {
  const [one, two] = [uniqueTopic("limit-a"), uniqueTopic("limit-b")];
  await createTopics([{ name: one }, { name: two }]);
  const bridge = await BridgeProcess.start({ set: ["hub.maxTopics=1"] });
  const c = await bridge.connect();
  try {
    await c.subscribe(one, { sub: "a", mode: "broadcast", credit: 10 });
    const refused = await c.request({
      op: "subscribe",
      id: "b",
      sub: "b",
      topic: two,
      mode: "broadcast",
      credit: 10,
    });
    assert.equal(refused.op, "error");
    assert.equal(refused.code, "TOO_MANY_SUBSCRIPTIONS");
    assert.match(refused.message, /at most 1 topics/);
  } finally {
    await c.close();
    await bridge.stop();
  }
});
