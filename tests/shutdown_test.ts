/** SIGTERM under load: in-flight publishes are answered, acked ones are in Kafka, exit code 0. */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import type { Frame, TestClient } from "./helpers/ws_client.ts";

/** Publishes windows of `size` until the connection closes; returns ids in send order. */
async function publishUntilClosed(
  c: TestClient,
  topic: string,
  name: string,
  size: number,
  firstWindowSent: () => void,
) {
  const sent: string[] = [];
  let open = true;
  c.closed.then(() => (open = false));
  for (let w = 0; open; w++) {
    const ids = Array.from({ length: size }, (_, i) => `${name}-${w}-${i}`);
    for (const id of ids) {
      if (!open) break;
      c.send({ op: "publish", id, topic, value: id });
      sent.push(id);
    }
    if (w === 3) firstWindowSent();
    await Promise.all(ids.map((id) => c.waitFor((f) => f.id === id, 30_000))).catch(() => {});
  }
  return sent;
}

Deno.test("shutdown: SIGTERM under load answers every in-flight publish and exits 0", async () => {
  const topic = uniqueTopic("term");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  const clients = await Promise.all([bridge.connect(), bridge.connect(), bridge.connect()]);
  let ready = 0;
  let allLoaded: () => void;
  const loaded = new Promise<void>((r) => (allLoaded = r));
  const runs = clients.map((c, i) =>
    publishUntilClosed(c, topic, `c${i}`, 200, () => ++ready === clients.length && allLoaded())
  );
  await loaded;
  const code = await bridge.stop("SIGTERM");
  const sentPerClient = await Promise.all(runs);
  assert.equal(code, 0, "exit code after SIGTERM");

  const shutdown = bridge.logs("shutting down")[0];
  console.log(`at SIGTERM: ${shutdown.inflight} publishes in flight over ${shutdown.sessions} sessions`);
  assert.ok(bridge.logs("stopped").length === 1, "the bridge logged a clean stop");

  const acked = new Set<string>();
  for (const [i, c] of clients.entries()) {
    assert.equal((await c.closed).code, 1001, "closed with 1001 going away");
    const answers = new Map<string, Frame>(
      c.frames.filter((f) => f.op === "ack" || f.op === "nack").map((f) => [f.id, f]),
    );
    const sent = sentPerClient[i];
    // Only publishes still on the wire when the bridge sent its close frame may go unanswered: a suffix.
    const firstUnanswered = sent.findIndex((id) => !answers.has(id));
    if (firstUnanswered >= 0) {
      assert.ok(
        sent.slice(firstUnanswered).every((id) => !answers.has(id)),
        "no answered publish follows an unanswered one",
      );
    }
    for (const f of answers.values()) {
      if (f.op === "ack") acked.add(f.id);
      else assert.ok(["SHUTTING_DOWN", "KAFKA_TIMEOUT"].includes(f.code) && f.retryable, JSON.stringify(f));
    }
  }
  const inKafka = (await kcatRead(topic)).map((r) => r.payload!);
  assert.equal(new Set(inKafka).size, inKafka.length, "no duplicates in Kafka");
  for (const id of acked) assert.ok(inKafka.includes(id), `acked ${id} is in Kafka`);
  console.log(
    `${acked.size} acked, all in Kafka; ${inKafka.length - acked.size} written but unanswered or nacked`,
  );
  assert.ok(acked.size > 0);
  await Promise.all(clients.map((c) => c.close()));
});
