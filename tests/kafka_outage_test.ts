/**
 * Kafka stopped mid-run: publishes are nacked as retryable, never falsely acked,
 * /readyz turns 503, and service recovers when Kafka returns. Uses a broker of its
 * own so the shared one keeps serving the other tests.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, recordsByPosition } from "./helpers/kcat.ts";
import type { Frame } from "./helpers/ws_client.ts";
import { until } from "./helpers/wait.ts";

const OUTAGE_PORT = Number(Deno.env.get("OUTAGE_KAFKA_PORT") ?? 19192);

async function readyStatus(url: string): Promise<number> {
  const r = await fetch(`${url}/readyz`);
  await r.body?.cancel();
  return r.status;
}

Deno.test("kafka outage: publishes are nacked retryable, never falsely acked, and service recovers", async () => {
  const broker = new OwnBroker(OUTAGE_PORT);
  await broker.start();
  const topic = uniqueTopic("outage");
  await createTopics([{ name: topic, partitions: 2 }], broker.address);
  const bridge = await BridgeProcess.start({
    brokers: broker.address,
    set: ["kafka.publishTimeoutMs=4000", "kafka.requestTimeoutMs=2000", "kafka.healthCheckIntervalMs=500"],
  });
  const c = await bridge.connect();
  let seq = 0;
  const publishOne = () => {
    const id = `m${seq++}`;
    return c.publish(topic, id, { id }); // the payload is the publish id, so acks map to records
  };
  try {
    for (let i = 0; i < 20; i++) assert.equal((await publishOne()).op, "ack");

    // Keep publishing while the broker goes down, so some publishes are in flight when it dies.
    let stopping = true;
    const racing = (async () => {
      const answers: Frame[] = [];
      while (stopping) answers.push(...await Promise.all(Array.from({ length: 5 }, publishOne)));
      return answers;
    })();
    await broker.stop();
    stopping = false;
    const raced = await racing;
    for (const f of raced) {
      assert.ok(
        f.op === "ack" || (f.op === "nack" && f.retryable),
        `answer while Kafka stops: ${JSON.stringify(f)}`,
      );
    }
    console.log(
      `while the broker stopped: ${raced.filter((f) => f.op === "ack").length} acked, ${
        raced.filter((f) => f.op === "nack").length
      } nacked`,
    );
    const down = await until(
      "/readyz to report 503",
      async () => (await readyStatus(bridge.httpUrl)) === 503,
    );
    console.log(`readyz went 503 ${down.toFixed(0)} ms after the broker stopped`);
    const during: Frame[] = await Promise.all(Array.from({ length: 10 }, publishOne));
    for (const f of during) {
      assert.equal(f.op, "nack", `no ack while Kafka is down: ${JSON.stringify(f)}`);
      assert.ok(["KAFKA_UNAVAILABLE", "KAFKA_TIMEOUT"].includes(f.code), f.code);
      assert.equal(f.retryable, true);
    }

    await broker.start();
    const back = await until("a publish to be acked again", async () => (await publishOne()).op === "ack");
    console.log(`publishes acked again ${back.toFixed(0)} ms after the broker restarted`);
    await until("/readyz to report 200", async () => (await readyStatus(bridge.httpUrl)) === 200);
    for (let i = 0; i < 20; i++) assert.equal((await publishOne()).op, "ack");

    const records = await kcatRead(topic, broker.address);
    const recordAt = recordsByPosition(records);
    const acks = c.frames.filter((f) => f.op === "ack");
    assert.ok(acks.length >= 41);
    for (const a of acks) {
      assert.equal(recordAt(a.partition, a.offset)?.payload, a.id, `ack ${a.id} names its record`);
    }
    const payloads = records.map((r) => r.payload);
    assert.equal(new Set(payloads).size, payloads.length, "no duplicates");
    assert.ok(
      bridge.logs("Kafka lost").length >= 1 && bridge.logs("Kafka connected").length >= 2,
      "outage and recovery are logged",
    );
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
    await broker.stop();
  }
});
