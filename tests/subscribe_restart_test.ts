/**
 * Subscribers across a broker restart: a broadcast subscriber's place is its own,
 * so neither `latest` nor `earliest` skips or replays a record when Kafka comes back;
 * a group member continues from its commits. Uses a broker of its own, restarted
 * mid-test; kcat checks what Kafka holds.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import { until } from "./helpers/wait.ts";
import type { Frame, TestClient } from "./helpers/ws_client.ts";

const RESTART_PORT = Number(Deno.env.get("RESTART_KAFKA_PORT") ?? 19592);

/** Publishes `values`, retrying each until it is acked (Kafka may still be coming back). */
async function publishAcked(c: TestClient, topic: string, values: string[]): Promise<void> {
  for (const value of values) {
    await until(
      `an ack for ${value}`,
      async () => (await c.publish(topic, value, { key: value })).op === "ack",
      60_000,
    );
  }
}

/** Message frames of one subscription, in arrival order. */
function received(c: TestClient, sub: string): Frame[] {
  return c.messages(sub);
}

/** Every record Kafka holds arrives exactly once, and each partition in offset order. */
function assertEachPositionOnce(frames: Frame[], positions: string[], who: string): void {
  const got = frames.map((f) => `${f.partition}/${f.offset}`);
  const dupes = got.filter((v, i) => got.indexOf(v) !== i);
  assert.deepEqual(dupes, [], `${who} received records twice`);
  assert.deepEqual([...got].sort(), [...positions].sort(), `${who} received every record`);
  const byPartition = new Map<number, number[]>();
  for (const f of frames) {
    byPartition.set(f.partition, [...(byPartition.get(f.partition) ?? []), Number(f.offset)]);
  }
  for (const [p, offsets] of byPartition) {
    assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b), `${who}: partition ${p} in order`);
  }
}

Deno.test("subscribe: broadcast (latest and earliest) and group subscribers neither skip nor replay across a broker restart", async () => {
  const broker = new OwnBroker(RESTART_PORT);
  await broker.start();
  const topic = uniqueTopic("restart");
  await createTopics([{ name: topic, partitions: 3 }], broker.address);
  const bridge = await BridgeProcess.start({
    brokers: broker.address,
    set: ["kafka.healthCheckIntervalMs=500", "kafka.consumer.sessionTimeoutMs=6000"],
  });
  const clients: TestClient[] = [];
  try {
    const [pub, latest, earliest, grouped] = await Promise.all([1, 2, 3, 4].map(() => bridge.connect()));
    clients.push(pub, latest, earliest, grouped);
    await latest.subscribe(topic, { sub: "latest", mode: "broadcast", from: "latest", credit: 1000 });
    await earliest.subscribe(topic, { sub: "earliest", mode: "broadcast", from: "earliest", credit: 1000 });
    await grouped.subscribe(topic, {
      sub: "grouped",
      mode: "group",
      group: uniqueTopic("g"),
      from: "earliest",
      credit: 1000,
    });
    // The group member commits each message as it arrives.
    grouped.ws.addEventListener("message", (e) => {
      const f = JSON.parse(e.data as string);
      if (f.op === "message") {
        grouped.send({
          op: "commit",
          id: `c${f.partition}-${f.offset}`,
          sub: "grouped",
          partition: f.partition,
          offset: f.offset,
        });
      }
    });

    const before = Array.from({ length: 30 }, (_, i) => `before-${i}`);
    await publishAcked(pub, topic, before);
    for (const [c, sub] of [[latest, "latest"], [earliest, "earliest"], [grouped, "grouped"]] as const) {
      await until(`${sub} to receive the first 30`, () => received(c, sub).length >= 30, 30_000);
    }
    await until("the group's commits", () => grouped.frames.filter((f) => f.op === "committed").length >= 30);

    await broker.stop();
    await broker.start();
    const after = Array.from({ length: 30 }, (_, i) => `after-${i}`);
    await publishAcked(pub, topic, after);
    const all = [...before, ...after];
    for (const [c, sub] of [[latest, "latest"], [earliest, "earliest"], [grouped, "grouped"]] as const) {
      await until(
        `${sub} to receive all 60`,
        () => new Set(received(c, sub).map((f) => f.value)).size >= 60,
        45_000,
      );
    }
    await new Promise((r) => setTimeout(r, 2000)); // time for a replay to show up, if there were one
    // What Kafka holds (a publish retried after a timeout may be there twice, at two offsets).
    const inKafka = await kcatRead(topic, broker.address);
    assert.deepEqual([...new Set(inKafka.map((r) => r.payload))].sort(), [...all].sort());
    const positions = inKafka.map((r) => `${r.partition}/${r.offset}`);
    for (const [c, sub] of [[latest, "latest"], [earliest, "earliest"], [grouped, "grouped"]] as const) {
      assertEachPositionOnce(received(c, sub), positions, `the ${sub} subscriber`);
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
    await broker.stop();
  }
});
