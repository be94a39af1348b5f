/**
 * HA in heartbeat mode, with real bridge processes and the real broker. Every
 * test counts what reached Kafka with kcat, and prints the times it saw (the
 * benchmarks, not these tests, judge speed).
 */
import assert from "node:assert/strict";
import { HaCluster } from "./helpers/ha.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import { pairBehindLink } from "./helpers/udp_relay.ts";

Deno.test("ha heartbeat: with one live and two backups, exactly one backup is promoted", async () => {
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }, {
    name: "c",
    priority: 100,
  }]);
  try {
    await Promise.all([ha.start("a"), ha.start("b"), ha.start("c")]);
    await ha.waitRole("a", "live");
    await ha.stop("a", "SIGKILL");
    await ha.waitRole("b", "live");
    for (let i = 0; i < 15; i++) {
      assert.deepEqual(await ha.lives(), ["b"], "one live only");
      assert.equal((await ha.readyz("c"))?.role, "backup");
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await ha.close();
  }
});

Deno.test("ha heartbeat: a zombie live (SIGSTOP, then SIGCONT) cannot get a write accepted and steps down", async () => {
  const topic = uniqueTopic("hb-zombie");
  await createTopics([{ name: topic, partitions: 1 }]);
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ]);
  try {
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    await ha.waitRole("b", "backup");
    const a = ha.bridge("a");
    const client = await a.connect();
    assert.equal((await client.publish(topic, "before", { id: "before" })).op, "ack");

    a.signal("SIGSTOP");
    const stoppedAt = performance.now();
    await ha.waitRole("b", "live");
    console.log(`failover (SIGSTOP -> backup live): ${(performance.now() - stoppedAt).toFixed(0)} ms`);
    // Written to the frozen zombie's socket; read when it wakes up.
    for (let i = 0; i < 5; i++) {
      client.send({ op: "publish", id: `zombie-${i}`, topic, value: `zombie-${i}` });
    }
    a.signal("SIGCONT");

    const answers = await Promise.all(
      Array.from(
        { length: 5 },
        (_, i) => client.waitFor((f) => f.id === `zombie-${i}`, 15_000).catch(() => undefined),
      ),
    );
    for (const f of answers) assert.notEqual(f?.op, "ack", `the zombie acked nothing: ${JSON.stringify(f)}`);
    await ha.waitRole("a", "backup");
    assert.deepEqual(await ha.lives(), ["b"]);
    const inKafka = (await kcatRead(topic)).map((r) => r.payload);
    assert.deepEqual(
      inKafka.filter((p) => p!.startsWith("zombie")),
      [],
      "no zombie write is visible in Kafka",
    );
    assert.ok(inKafka.includes("before"));
    const stepDown = ha.transitions().find((x) =>
      x.node === "a" && (x.to === "draining" || x.to === "fenced")
    );
    console.log(`zombie stepped down: ${stepDown?.reason}`);
    await client.close();
  } finally {
    await ha.close();
  }
});

Deno.test("ha heartbeat: with the heartbeat link cut, Kafka fencing stops the old live's writes", async () => {
  const topic = uniqueTopic("hb-split");
  await createTopics([{ name: topic, partitions: 1 }]);
  // a and b talk through relays that can drop datagrams.
  const { ha, link } = await pairBehindLink();
  try {
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    await ha.waitRole("b", "backup");
    const client = await ha.bridge("a").connect();
    assert.equal((await client.publish(topic, "before", { id: "before" })).op, "ack");

    link.cut();
    await ha.waitRole("b", "live");
    // a still believes it is live; Kafka must refuse it.
    const after = await client.publish(topic, "split", { id: "split" });
    assert.equal(after.op, "nack", JSON.stringify(after));
    assert.equal(after.code, "NOT_LIVE");
    await ha.waitRole("a", "backup");
    link.heal();
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(await ha.lives(), ["b"], "after the link heals, b stays the only live");
    const inKafka = (await kcatRead(topic)).map((r) => r.payload);
    assert.ok(!inKafka.includes("split"), "the fenced write never became visible");
    await client.closed;
  } finally {
    await ha.close();
    await link.close();
  }
});

Deno.test("ha heartbeat: after kill -9 of the live, a consumer group continues from its committed offsets", async () => {
  const topic = uniqueTopic("hb-group");
  const group = uniqueTopic("g");
  await createTopics([{ name: topic, partitions: 1 }]);
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
    "kafka.consumer.sessionTimeoutMs=6000",
  ]);
  try {
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    const producer = await ha.bridge("a").connect();
    for (let i = 0; i < 6; i++) {
      assert.equal((await producer.publish(topic, `v${i}`, { id: `v${i}` })).op, "ack");
    }
    const c1 = await ha.bridge("a").connect();
    const s1 = await c1.subscribe(topic, { mode: "group", group, from: "earliest", credit: 4 });
    const first = await c1.waitForCount((f) => f.op === "message", 4);
    assert.equal(
      (await c1.request({ op: "commit", sub: s1.sub, partition: 0, offset: first[2].offset })).op,
      "committed",
    );

    const killedAt = performance.now();
    await ha.stop("a", "SIGKILL");
    await ha.waitRole("b", "live");
    const c2 = await ha.bridge("b").connect();
    const s2 = await c2.subscribe(topic, { mode: "group", group, from: "earliest", credit: 10 });
    const resumed = await c2.waitForCount((f) => f.op === "message" && f.sub === s2.sub, 3, 30_000);
    console.log(
      `group resumed on the new live ${
        (performance.now() - killedAt).toFixed(0)
      } ms after kill -9 (session timeout 6000 ms)`,
    );
    assert.deepEqual(
      resumed.map((m) => m.value),
      ["v3", "v4", "v5"],
      "delivery resumes right after the committed v2",
    );
    await Promise.all([producer.closed, c1.closed]);
    await c2.close();
  } finally {
    await ha.close();
  }
});
