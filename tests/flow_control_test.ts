/** Credit-based flow control: a subscriber that grants no credit cannot make the bridge buffer without bound. */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce } from "./helpers/kcat.ts";

async function metric(bridge: BridgeProcess, name: string): Promise<number> {
  const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  assert.ok(line, `metric ${name} is exported`);
  return Number(line.split(" ").pop());
}

Deno.test("flow control: without credit nothing more is sent and memory stays bounded", async () => {
  const topic = uniqueTopic("credit");
  await createTopics([{ name: topic, partitions: 1 }]);
  // 40 MB waiting in Kafka: far more than the bridge may hold for one subscriber.
  const big = "x".repeat(10_000);
  for (let i = 0; i < 8; i++) {
    await kcatProduce(
      topic,
      Array.from({ length: 500 }, (_, j) => `${i}-${j}-${big}`),
    );
  }
  const bridge = await BridgeProcess.start({ set: ["kafka.consumer.maxBytesPerPartition=1048576"] });
  const c = await bridge.connect();
  try {
    const rssBefore = await metric(bridge, 'edge_bridge_memory_bytes{kind="rss"}');
    const { sub } = await c.subscribe(topic, { from: "earliest", credit: 5 });
    await c.waitForCount((f) => f.op === "message", 5);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(c.messages().length, 5, "exactly the granted credit was delivered");
    assert.equal(
      await metric(bridge, "edge_bridge_pending_deliveries"),
      1,
      "one message waits for credit; nothing queues behind it",
    );
    const rssAfter = await metric(bridge, 'edge_bridge_memory_bytes{kind="rss"}');
    const grownMB = (rssAfter - rssBefore) / 1e6;
    console.log(`bridge RSS grew ${grownMB.toFixed(1)} MB with 40 MB waiting in Kafka`);
    assert.ok(grownMB < 30, `bridge memory grew ${grownMB.toFixed(1)} MB`);

    // Credit resumes delivery, in order.
    c.send({ op: "credit", sub, n: 20 });
    const msgs = await c.waitForCount((f) => f.op === "message", 25);
    assert.deepEqual(msgs.map((m) => m.offset), Array.from({ length: 25 }, (_, i) => String(i)));
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("flow control: the disconnect policy drops a subscriber that stalls", async () => {
  const topic = uniqueTopic("stall");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, ["a", "b", "c"]);
  const bridge = await BridgeProcess.start({
    set: ["server.slowConsumer.policy=disconnect", "server.slowConsumer.stallTimeoutMs=500"],
  });
  const c = await bridge.connect();
  try {
    await c.subscribe(topic, { from: "earliest", credit: 1 });
    const closed = await c.closed;
    assert.equal(closed.code, 4008);
    const err = c.frames.find((f) => f.op === "error");
    assert.equal(err?.code, "SLOW_CONSUMER");
    assert.equal(c.messages().length, 1);
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});
