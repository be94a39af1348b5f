/**
 * The publish path under the load users put on it: several clients with full
 * windows, records of 5-60 KB, topics with small limits, a client spraying topic
 * names over a slow link, and fencing while several partitions have batches.
 * Real bridge processes, the real broker; kcat checks what Kafka holds.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { BridgeProcess } from "./helpers/bridge.ts";
import { freePort } from "./helpers/ha.ts";
import { brokers, createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, recordsByPosition } from "./helpers/kcat.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import type { Frame, TestClient } from "./helpers/ws_client.ts";

const SLOW_KAFKA_PORT = Number(Deno.env.get("SLOW_KAFKA_PORT") ?? 19292);

/** Sends every publish at once (callers keep within the in-flight limit) and returns the answers in order. */
async function publishAll(c: TestClient, frames: Frame[], timeoutMs = 60_000): Promise<Frame[]> {
  const answers = frames.map((f) =>
    c.waitFor((x) => x.id === f.id && (x.op === "ack" || x.op === "nack"), timeoutMs)
  );
  for (const f of frames) c.send({ op: "publish", ...f });
  return await Promise.all(answers);
}

function assertAllAcked(answers: Frame[]): void {
  const nacks = answers.filter((a) => a.op !== "ack");
  assert.equal(nacks.length, 0, `${nacks.length} nacked, e.g. ${JSON.stringify(nacks[0])}`);
}

Deno.test("publish load: 4 clients x 250 in flight x 5,000 B keyless records are all acked, each where Kafka has it", async () => {
  const topic = uniqueTopic("load-5k");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  const clients = await Promise.all([1, 2, 3, 4].map(() => bridge.connect()));
  try {
    const answers = await Promise.all(clients.map((c, ci) =>
      publishAll(
        c,
        Array.from(
          { length: 250 },
          (_, i) => ({ id: `c${ci}-${i}`, topic, value: `c${ci}-${i}:`.padEnd(5000, "x") }),
        ),
      )
    ));
    for (const a of answers) assertAllAcked(a);
    const records = await kcatRead(topic, brokers(), 1000);
    assert.equal(records.length, 1000, "Kafka holds exactly the acked records");
    const recordAt = recordsByPosition(records);
    for (const a of answers.flat()) {
      const r = recordAt(a.partition, a.offset);
      assert.ok(r, `ack ${a.id} names ${a.partition}/${a.offset}, which Kafka does not hold`);
      assert.equal(r.payload, `${a.id}:`.padEnd(5000, "x"));
    }
    assert.ok(new Set(records.map((r) => r.partition)).size > 1, "keyless records spread over partitions");
    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(metrics)?.[1]);
    assert.equal(
      metric("edge_bridge_kafka_produce_records_sum"),
      1000,
      "confirmed requests carried every record once",
    );
    assert.ok(metric("edge_bridge_kafka_produce_records_count") > 1, "in several requests");
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
  }
});

Deno.test("publish load: under a topic's 64 KB limit, a 100 KB record is refused alone and everything around it is written", async (t) => {
  const topic = uniqueTopic("limit-64k");
  await createTopics([{ name: topic, partitions: 3, configs: { "max.message.bytes": String(64 * 1024) } }]);
  const bridge = await BridgeProcess.start({ set: ["server.maxFrameBytes=262144"] });
  const clients = await Promise.all([1, 2, 3, 4].map(() => bridge.connect()));
  try {
    await t.step("a 100 KB record among 60 KB ones", async () => {
      const frames = Array.from({ length: 9 }, (_, i) => ({
        id: `big-${i}`,
        topic,
        key: "same-key", // one partition, so the large record sits between its neighbours in one queue
        value: `big-${i}:`.padEnd(i === 4 ? 100_000 : 60_000, "y"),
      }));
      const answers = await publishAll(clients[0], frames);
      const refused = answers[4];
      assert.equal(refused.op, "nack", JSON.stringify(refused));
      assert.equal(refused.code, "RECORD_TOO_LARGE");
      assert.equal(refused.retryable, false);
      assert.match(refused.message, /100\d{3} bytes.*max\.message\.bytes 65536/);
      assertAllAcked(answers.filter((_, i) => i !== 4));
      const recordAt = recordsByPosition(await kcatRead(topic));
      for (const a of answers.filter((_, i) => i !== 4)) {
        assert.equal(recordAt(a.partition, a.offset)?.payload, `${a.id}:`.padEnd(60_000, "y"));
      }
    });
    await t.step("keyless 10 KB records from 4 clients", async () => {
      const answers = await Promise.all(clients.map((c, ci) =>
        publishAll(
          c,
          Array.from(
            { length: 200 },
            (_, i) => ({ id: `k${ci}-${i}`, topic, value: `k${ci}-${i}:`.padEnd(10_000, "z") }),
          ),
        )
      ));
      for (const a of answers) assertAllAcked(a);
      const recordAt = recordsByPosition(await kcatRead(topic));
      for (const a of answers.flat()) {
        assert.equal(recordAt(a.partition, a.offset)?.payload, `${a.id}:`.padEnd(10_000, "z"));
      }
    });
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
  }
});

Deno.test("publish load: per-key order holds with several requests in flight across partitions", async () => {
  const topic = uniqueTopic("order");
  await createTopics([{ name: topic, partitions: 6 }]);
  const bridge = await BridgeProcess.start({ set: ["kafka.producers=4"] });
  const clients = await Promise.all([1, 2, 3, 4].map(() => bridge.connect()));
  try {
    const N = 1000;
    await Promise.all(clients.map(async (c, ci) => {
      for (let start = 0; start < N; start += 250) {
        const frames = Array.from({ length: 250 }, (_, j) => {
          const i = start + j;
          return { id: `c${ci}-${i}`, topic, key: `key-${i % 24}`, value: `c${ci} ${i}` };
        });
        assertAllAcked(await publishAll(c, frames));
      }
    }));
    const records = await kcatRead(topic, brokers(), 4 * N);
    assert.equal(records.length, 4 * N);
    assert.equal(new Set(records.map((r) => r.partition)).size, 6, "the keys cover every partition");
    for (let ci = 0; ci < 4; ci++) {
      for (let k = 0; k < 24; k++) {
        const seq = records.filter((r) => r.key === `key-${k}` && r.payload!.startsWith(`c${ci} `))
          .map((r) => Number(r.payload!.split(" ")[1]));
        assert.equal(seq.length, Math.floor(N / 24) + (k < N % 24 ? 1 : 0));
        assert.deepEqual(seq, [...seq].sort((a, b) => a - b), `client ${ci} key-${k} out of order`);
      }
    }
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await bridge.stop();
  }
});

Deno.test("publish load: a client spraying unknown topic names over a slow link does not hold up another client", async () => {
  // Every Kafka round trip from the bridge costs 2 x 100 ms, so waiting on 256 lookups
  // one after another would take over 50 s: far past the publish timeout.
  const proxyPort = freePort();
  const broker = new OwnBroker(SLOW_KAFKA_PORT, [proxyPort]);
  await broker.start();
  const proxy = new TcpProxy(proxyPort, broker.proxyTarget(0), 100);
  proxy.start();
  const topic = uniqueTopic("good");
  await createTopics([{ name: topic, partitions: 3 }], broker.address);
  const bridge = await BridgeProcess.start({ brokers: `127.0.0.1:${proxyPort}` });
  const [good, sprayer] = await Promise.all([bridge.connect(), bridge.connect()]);
  try {
    assertAllAcked(await publishAll(good, [{ id: "warm", topic, value: "first lookup of the good topic" }]));
    const spray = publishAll(
      sprayer,
      Array.from({ length: 256 }, (_, i) => ({ id: `s${i}`, topic: uniqueTopic(`nope-${i}`), value: "x" })),
    );
    const sentAt = performance.now();
    const answers = await publishAll(
      good,
      Array.from({ length: 200 }, (_, i) => ({ id: `g${i}`, topic, value: `g${i}` })),
    );
    const goodDoneMs = performance.now() - sentAt;
    assertAllAcked(answers);
    // A bound with a wide margin, not a speed check: in line behind the lookups, this takes minutes.
    assert.ok(goodDoneMs < 10_000, `the good client waited ${goodDoneMs.toFixed(0)} ms`);
    const sprayed = await spray;
    assert.ok(
      sprayed.every((a) => a.op === "nack" && a.code === "UNKNOWN_TOPIC"),
      JSON.stringify(sprayed[0]),
    );
    const recordAt = recordsByPosition(await kcatRead(topic, broker.address));
    for (const a of answers) assert.equal(recordAt(a.partition, a.offset)?.payload, a.id);
    console.log(`good client's 200 acks took ${goodDoneMs.toFixed(0)} ms during the spray`);
  } finally {
    await Promise.all([good.close(), sprayer.close()]);
    await bridge.stop();
    await proxy.cut();
    await broker.stop();
  }
});

Deno.test("publish load (HA): one fenced write fences the whole node while several partitions have batches", async () => {
  const topic = uniqueTopic("ha-fence");
  await createTopics([{ name: topic, partitions: 3 }]);
  const dir = await Deno.makeTempDir();
  const pairId = uniqueTopic("fence-pair");
  const bridge = await BridgeProcess.start({
    set: [
      "ha.mode=file-lock",
      `ha.fileLock.dir=${dir}`,
      `ha.pairId=${pairId}`,
      "ha.failoverOnShutdown=false",
    ],
  });
  const kafka = new Kafka({ brokers: brokers().split(","), logLevel: logLevel.NOTHING });
  const usurper = kafka.producer({
    transactionalId: `edge-bridge-ha.${pairId}`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  let client: TestClient | undefined;
  try {
    const ready = async () => (await (await fetch(`${bridge.httpUrl}/readyz`)).json()) as { role: string };
    while ((await ready()).role !== "live") await new Promise((r) => setTimeout(r, 50));
    client = await bridge.connect();
    assertAllAcked(
      await publishAll(
        client,
        [0, 1, 2].map((p) => ({ id: `before-${p}`, topic, partition: p, value: "before" })),
      ),
    );

    // Another holder of the pair's transactional id: its InitProducerId fences the bridge.
    await usurper.connect();
    await (await usurper.transaction()).abort();

    const answers = await publishAll(
      client,
      Array.from(
        { length: 240 },
        (_, i) => ({ id: `after-${i}`, topic, partition: i % 3, value: `after-${i}` }),
      ),
      30_000,
    ).catch(() => undefined);
    // Answers may also stop with the connection, closed 4001 once the node steps down.
    for (const a of answers ?? []) assert.notEqual(a.op, "ack", `a fenced node acked ${JSON.stringify(a)}`);
    while ((await ready()).role === "live") await new Promise((r) => setTimeout(r, 50));
    assert.ok(bridge.lines.some((l) => l.includes('"to":"fenced"')), "the node went through 'fenced'");
    const payloads = (await kcatRead(topic)).map((r) => r.payload);
    assert.equal(
      payloads.filter((p) => p!.startsWith("after")).length,
      0,
      "no write after fencing is visible",
    );
    assert.equal(payloads.filter((p) => p === "before").length, 3);
  } finally {
    await client?.close();
    await usurper.disconnect();
    await bridge.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
