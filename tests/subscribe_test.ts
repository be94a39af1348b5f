/** Subscriptions through a real bridge: start positions, groups, broadcast, commits and resume. */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce } from "./helpers/kcat.ts";
import type { TestClient } from "./helpers/ws_client.ts";

const values = (c: TestClient, sub?: string) => c.messages(sub).map((m) => m.value);

Deno.test("subscribe: earliest, latest, offset and timestamp start positions", async (t) => {
  const topic = uniqueTopic("start");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, ["m0", "m1", "m2", "m3"], { partition: 0 });
  const bridge = await BridgeProcess.start();
  const c = await bridge.connect();
  try {
    await t.step("earliest delivers everything, with position, key, headers and timestamp", async () => {
      const { sub } = await c.subscribe(topic, { from: "earliest", credit: 100 });
      const msgs = await c.waitForCount((f) => f.op === "message" && f.sub === sub, 4);
      assert.deepEqual(msgs.map((m) => m.value), ["m0", "m1", "m2", "m3"]);
      assert.deepEqual(msgs.map((m) => m.offset), ["0", "1", "2", "3"]);
      for (const m of msgs) {
        assert.equal(m.topic, topic);
        assert.equal(m.partition, 0);
        assert.equal(m.key, null);
        assert.deepEqual(m.headers, {});
        assert.match(m.timestamp, /^\d{13}$/);
      }
    });
    await t.step("offset starts at the named offset", async () => {
      const { sub } = await c.subscribe(topic, { from: { offsets: { "0": "2" } }, credit: 100 });
      await c.waitForCount((f) => f.op === "message" && f.sub === sub, 2);
      assert.deepEqual(values(c, sub), ["m2", "m3"]);
    });
    await t.step("timestamp starts at the first message at or after it", async () => {
      const first = c.messages().find((m) => m.value === "m0")!;
      const { sub } = await c.subscribe(topic, { from: { timestamp: Number(first.timestamp) }, credit: 100 });
      await c.waitForCount((f) => f.op === "message" && f.sub === sub, 4);
      assert.deepEqual(values(c, sub), ["m0", "m1", "m2", "m3"]);
      const future = await c.subscribe(topic, { from: { timestamp: Date.now() + 60_000 }, credit: 100 });
      const latest = await c.subscribe(topic, { from: "latest", credit: 100 });
      await kcatProduce(topic, ["m4"], { partition: 0 });
      await c.waitForCount((f) => f.op === "message" && f.sub === latest.sub, 1);
      await c.waitForCount((f) => f.op === "message" && f.sub === future.sub, 1);
      assert.deepEqual(values(c, latest.sub), ["m4"], "latest sees only what came after subscribed");
      assert.deepEqual(values(c, future.sub), ["m4"], "a future timestamp starts at the end");
    });
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("subscribe: after a group commit and a reconnect, delivery resumes after the committed offset", async () => {
  const topic = uniqueTopic("resume");
  const group = uniqueTopic("g");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, ["a", "b", "c", "d", "e"], { partition: 0 });
  const bridge = await BridgeProcess.start();
  try {
    const c1 = await bridge.connect();
    const s1 = await c1.subscribe(topic, { mode: "group", group, from: "earliest", credit: 3 });
    const first = await c1.waitForCount((f) => f.op === "message", 3);
    assert.deepEqual(first.map((m) => m.value), ["a", "b", "c"], "credit 3 delivers three");
    // Commit "b": the group resumes at "c".
    const committed = await c1.request({ op: "commit", sub: s1.sub, partition: 0, offset: first[1].offset });
    assert.equal(committed.op, "committed");
    await c1.close();

    const c2 = await bridge.connect();
    const s2 = await c2.subscribe(topic, { mode: "group", group, from: "earliest", credit: 10 });
    const again = await c2.waitForCount((f) => f.op === "message" && f.sub === s2.sub, 3);
    assert.deepEqual(again.map((m) => m.value), ["c", "d", "e"]);
    await c2.close();
  } finally {
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("subscribe: two group members split the partitions; broadcast reaches every subscriber", async () => {
  const topic = uniqueTopic("split");
  const group = uniqueTopic("g");
  await createTopics([{ name: topic, partitions: 4 }]);
  const bridge = await BridgeProcess.start();
  const clients = await Promise.all([bridge.connect(), bridge.connect(), bridge.connect(), bridge.connect()]);
  const [g1, g2, b1, b2] = clients;
  try {
    const [s1, s2] = [
      await g1.subscribe(topic, { mode: "group", group, credit: 1000 }),
      await g2.subscribe(topic, { mode: "group", group, credit: 1000 }),
    ];
    await b1.subscribe(topic, { mode: "broadcast", credit: 1000 });
    await b2.subscribe(topic, { mode: "broadcast", credit: 1000 });
    // The first member's group rebalances when the second joins; give the group a moment to settle.
    await new Promise((r) => setTimeout(r, 3000));
    const sent: string[] = [];
    for (let p = 0; p < 4; p++) {
      const batch = Array.from({ length: 10 }, (_, i) => `p${p}-${i}`);
      sent.push(...batch);
      await kcatProduce(topic, batch, { partition: p });
    }
    await b1.waitForCount((f) => f.op === "message", 40);
    await b2.waitForCount((f) => f.op === "message", 40);
    assert.deepEqual(values(b1).sort(), [...sent].sort(), "broadcast subscriber 1 sees everything");
    assert.deepEqual(values(b2).sort(), [...sent].sort(), "broadcast subscriber 2 sees everything");

    const until = performance.now() + 20_000;
    while (g1.messages().length + g2.messages().length < 40 && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const got = [...values(g1, s1.sub), ...values(g2, s2.sub)];
    assert.deepEqual([...got].sort(), [...sent].sort(), "the group sees every message once");
    const parts1 = new Set(g1.messages().map((m) => m.partition));
    const parts2 = new Set(g2.messages().map((m) => m.partition));
    assert.ok(
      parts1.size > 0 && parts2.size > 0,
      `both members get partitions (${[...parts1]} / ${[...parts2]})`,
    );
    assert.equal([...parts1].filter((p) => parts2.has(p)).length, 0, "no partition is shared");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("subscribe: members of one group on one bridge, joining and leaving under a steady stream, never crash each other", async () => {
  const topic = uniqueTopic("churn");
  const group = uniqueTopic("g");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  const [stay, churn, producer] = await Promise.all([bridge.connect(), bridge.connect(), bridge.connect()]);
  try {
    const { sub } = await stay.subscribe(topic, { mode: "group", group, credit: 1000 });
    // The member that stays commits what it gets, as clients do.
    stay.onFrame = (f) => {
      if (f.op === "message" && f.sub === sub) {
        stay.send({
          op: "commit",
          id: `c${f.partition}-${f.offset}`,
          sub,
          partition: f.partition,
          offset: f.offset,
        });
        stay.send({ op: "credit", sub, n: 1 }); // and grants the credit back
      }
    };
    const sent: string[] = [];
    let publishing = true;
    const publishLoop = (async () => {
      for (let i = 0; publishing; i++) {
        sent.push(`m${i}`);
        await producer.publish(topic, `m${i}`, { id: `p${i}` });
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // Members join and leave while records flow: every join rebalances the group. (kafkajs keeps a
    // group's committed offsets per client and a joining member clears them: the bridge gives each
    // consumer a client of its own, src/kafka/kafkajs/client.ts kafkaClients.)
    for (let round = 0; round < 4; round++) {
      const joined = await churn.subscribe(topic, { mode: "group", group, credit: 1000 });
      await new Promise((r) => setTimeout(r, 1500));
      await churn.request({ op: "unsubscribe", sub: joined.sub });
      await new Promise((r) => setTimeout(r, 1000));
    }
    publishing = false;
    await publishLoop;
    const failures = [...stay.frames, ...churn.frames].filter((f) =>
      (f.op === "error" && f.id === undefined) || (f.op === "unsubscribed" && f.reason)
    );
    assert.deepEqual(failures, [], "no member's Kafka consumer failed");
    const until = performance.now() + 30_000;
    const seen = () => new Set([...values(stay, sub), ...churn.messages().map((m) => String(m.value))]);
    while (seen().size < sent.length && performance.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
    }
    const missing = sent.filter((v) => !seen().has(v));
    assert.deepEqual(missing.slice(0, 10), [], `the group got every record (${missing.length} missing)`);
  } finally {
    await Promise.all([stay, churn, producer].map((c) => c.close()));
    assert.equal(await bridge.stop(), 0);
  }
});
