/**
 * The SDK keeps exactly-once across HA failovers: an EdgeBridgeClient producer publishes at a
 * steady rate through 20 kill -9 failovers of a live/backup pair, and a group consumer (another
 * EdgeBridgeClient) commits each message. Then kcat (read_committed, librdkafka) checks every
 * acked record is in Kafka once, at its acked position, and nothing else is; and the consumer
 * saw each record once, in offset order per partition.
 */
import assert from "node:assert/strict";
import { EdgeBridgeClient, type Message } from "../src/client/mod.ts";
import type { BridgeProcess } from "./helpers/bridge.ts";
import { HaCluster } from "./helpers/ha.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, type KcatRecord } from "./helpers/kcat.ts";
import { mixedValue, type Sent, SteadyProducer } from "./helpers/steady_producer.ts";
import { until, within } from "./helpers/wait.ts";

/** The seq of a record published with one: the last part of its eb-message-id (clientId:instance:seq). */
function seqOf(r: { headers: Record<string, string> }): string | undefined {
  return r.headers["eb-message-id"]?.split(":").at(-1);
}

const CYCLES = 20;
const PARTITIONS = 3;
/** Publishes per second, paced by the clock (a late timer catches up). */
const RATE = 100;
/**
 * Every this many cycles the live is killed only once the group consumer reads through it. A new
 * live's member gets partitions only after the killed member's Kafka session expires (kafkajs has
 * no static membership), so with a kill every ~2 s the group would not deliver until the end.
 */
const CONSUMER_EVERY = 5;
/** The broker's smallest (group.min.session.timeout.ms): the consumer cycles wait for it. */
const SESSION_TIMEOUT_MS = 6000;

/** `m<N>` padded to ~1 KB for every fourth record and to 100 B for the others. */
const valueOf = (n: number) => mixedValue("m", n);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secs = (from: number, to: number) => ((to - from) / 1000).toFixed(1);

/** Every bridge process the test started (a restarted node is a new process), for the failure report. */
class BridgeLogs {
  readonly started: { name: string; bridge: BridgeProcess }[] = [];
  readonly client: string[] = [];

  add(name: string, bridge: BridgeProcess): void {
    this.started.push({ name, bridge });
  }

  watch(label: string, c: EdgeBridgeClient): void {
    c.addEventListener("log", (e) => {
      this.client.push(`${e.detail.time.toISOString()} ${label} [${e.detail.level}] ${e.detail.message}`);
    });
  }

  /** Writes every log to a file and prints where, with the tail of each. */
  async dump(why: unknown): Promise<void> {
    const file = await Deno.makeTempFile({ prefix: "sdk-failover-", suffix: ".log" });
    const parts = this.started.map(({ name, bridge }, i) =>
      `==== bridge ${name} (process ${i + 1}, pid ${bridge.pid}) ====\n${bridge.lines.join("\n")}`
    );
    parts.push(`==== SDK clients ====\n${this.client.join("\n")}`);
    await Deno.writeTextFile(file, parts.join("\n\n") + "\n");
    console.error(`sdk failover test failed: ${why instanceof Error ? why.stack : why}`);
    for (const { name, bridge } of this.started.slice(-3)) {
      console.error(`---- last lines of bridge ${name} (pid ${bridge.pid}) ----`);
      console.error(bridge.lines.slice(-40).join("\n"));
    }
    console.error(`---- last SDK client log lines ----\n${this.client.slice(-40).join("\n")}`);
    console.error(`every bridge's and client's full log: ${file}`);
  }
}

/**
 * A WebSocket that counts `message` frames for positions that came before: the group's
 * redeliveries after a failover, which the SDK must drop (the application sees each once).
 */
function countingRedeliveries() {
  const positions = new Set<string>();
  const counts = { frames: 0, redelivered: 0 };
  class CountingWebSocket extends WebSocket {
    constructor(url: string | URL, protocols?: ConstructorParameters<typeof WebSocket>[1]) {
      super(url, protocols);
      this.addEventListener("message", (e) => {
        const f = JSON.parse(e.data);
        if (f.op !== "message") return;
        counts.frames++;
        const at = `${f.partition}/${f.offset}`;
        if (positions.has(at)) counts.redelivered++;
        positions.add(at);
      });
    }
  }
  return { WebSocket: CountingWebSocket, counts };
}

/**
 * Records the group consumer was handed, in order. Each is committed as it is handled, without
 * waiting for the commit's answer before the next (a commit made just before a failover is
 * answered only once the group has settled on the new live, which kill -9 delays by the dead
 * member's session timeout); every commit's outcome is kept and checked at the end.
 */
function consume(client: EdgeBridgeClient, topic: string, group: string) {
  const sub = client.subscribe(topic, { mode: "group", group, from: "earliest" });
  const seen: Message[] = [];
  const commitErrors: unknown[] = [];
  const commits: Promise<void>[] = [];
  const loop = (async () => {
    for await (const m of sub) {
      seen.push(m);
      commits.push(sub.commit(m).catch((e) => void commitErrors.push(e)));
    }
  })();
  return { sub, seen, commitErrors, commits, loop };
}

function checkKafka(records: KcatRecord[], sent: Sent[], clientId: string): void {
  const acked = sent.filter((s) => s.ack);
  const byPosition = new Map(records.map((r) => [`${r.partition}/${r.offset}`, r]));
  for (const s of acked) {
    const r = byPosition.get(`${s.ack!.partition}/${s.ack!.offset}`);
    assert.ok(
      r,
      `m${s.n} (seq ${s.ack!.seq}) was acked at ${s.ack!.partition}/${s.ack!.offset}: not in Kafka`,
    );
    assert.equal(r.payload, s.value, `the record at m${s.n}'s acked position is another record`);
    assert.equal(r.headers["eb-client-id"], clientId);
    assert.equal(seqOf(r), String(s.ack!.seq), `m${s.n}'s record carries its seq`);
  }
  const count = (keys: string[]) => {
    const seen = new Map<string, number>();
    for (const k of keys) seen.set(k, (seen.get(k) ?? 0) + 1);
    return [...seen].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  };
  assert.deepEqual(
    count(records.map((r) => (r.payload ?? "").split(":")[0])).slice(0, 10),
    [],
    "records in Kafka twice (value)",
  );
  assert.deepEqual(
    count(records.map((r) => `${r.headers["eb-client-id"]}#${seqOf(r)}`)).slice(0, 10),
    [],
    "records in Kafka twice (eb-client-id + the seq in eb-message-id)",
  );
  assert.equal(records.length, acked.length, "Kafka holds the acked records and nothing else");
}

function checkConsumer(seen: Message[], sent: Sent[]): void {
  const last = new Map<number, bigint>();
  for (const m of seen) {
    const prev = last.get(m.partition);
    const at = BigInt(m.offset);
    assert.ok(
      prev === undefined || at > prev,
      `the consumer got partition ${m.partition} offset ${m.offset} after offset ${prev}`,
    );
    last.set(m.partition, at);
  }
  const acked = new Map(sent.filter((s) => s.ack).map((s) => [`${s.ack!.partition}/${s.ack!.offset}`, s]));
  const got = new Set<string>();
  for (const m of seen) {
    const key = `${m.partition}/${m.offset}`;
    assert.ok(!got.has(key), `the consumer got ${key} twice`);
    got.add(key);
    const s = acked.get(key);
    assert.ok(s, `the consumer got ${key} (${String(m.value).slice(0, 12)}), which no ack named`);
    assert.equal(m.value, s.value);
  }
  const missed = [...acked.keys()].filter((k) => !got.has(k));
  assert.deepEqual(missed.slice(0, 10), [], `the consumer missed ${missed.length} acked records`);
}

for (const mode of ["file-lock", "heartbeat"] as const) {
  Deno.test(`sdk failover (${mode}): ${CYCLES} kill -9 failovers, every acked record once in Kafka and once to a group`, async () => {
    const startedAt = performance.now();
    const topic = uniqueTopic(`sdk-fo-${mode}`);
    await createTopics([{ name: topic, partitions: PARTITIONS }]);
    const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
      "ha.allowFailback=false",
      `kafka.consumer.sessionTimeoutMs=${SESSION_TIMEOUT_MS}`,
      // A group's SyncGroup waits for the rebalance, which waits for the killed member's session to
      // expire: under kafkajs' request timeout that wait crashes and restarts the consumer, again
      // and again (the HA helpers' 3 s is short for this on purpose for produce requests).
      `kafka.requestTimeoutMs=${2 * SESSION_TIMEOUT_MS}`,
    ]);
    const logs = new BridgeLogs();
    const start = async (name: string) => logs.add(name, await ha.start(name));
    const urls = [ha.url("a"), ha.url("b")];
    const producer = new EdgeBridgeClient({ urls });
    const wire = countingRedeliveries();
    const consumer = new EdgeBridgeClient({ urls, WebSocket: wire.WebSocket });
    logs.watch("producer", producer);
    logs.watch("consumer", consumer);
    const pub = new SteadyProducer(producer, topic, { rate: RATE, valueOf });
    let group: ReturnType<typeof consume> | undefined;
    try {
      await start("a");
      await ha.waitRole("a", "live");
      await start("b");
      await ha.waitRole("b", "backup");
      group = consume(consumer, topic, uniqueTopic("g"));
      pub.start();

      let live = "a", backup = "b";
      const failoverMs: number[] = [];
      let consumerKills = 0;
      for (let i = 1; i <= CYCLES; i++) {
        // Kill only a live that has written for the producer, at a random point of its traffic.
        const epoch = (await ha.readyz(live))!.epoch;
        // At that epoch or a later one: epochs are Kafka's, and a live that re-activates (a fresh
        // producer after a Kafka error) serves on under a newer one.
        await until(
          `producer acks from ${live} (epoch ${epoch} or later)`,
          () => pub.ackedSince(epoch),
          30_000,
        );
        if (i % CONSUMER_EVERY === 0) {
          // The consumer resumes on this live and has messages in flight when it dies.
          await until(`the consumer on ${live}`, () => consumer.state.node === live, 30_000);
          const before = group.seen.length;
          await until(
            `the consumer to read through ${live} (it has ${group.seen.length} records)`,
            () => group!.seen.length >= before + 50,
            30_000,
          );
          consumerKills++;
        }
        await sleep(Math.random() * 300);
        const killedAt = performance.now();
        await ha.stop(live, "SIGKILL");
        await ha.waitRole(backup, "live");
        failoverMs.push(performance.now() - killedAt);
        await start(live);
        await ha.waitRole(live, "backup");
        [live, backup] = [backup, live];
      }
      const cyclesDone = performance.now();
      const lastEpoch = (await ha.readyz(live))!.epoch;
      await until(
        `producer acks from the last live (epoch ${lastEpoch} or later)`,
        () => pub.ackedSince(lastEpoch),
      );
      await pub.stop(60_000);

      const failed = pub.sent.filter((s) => s.error);
      assert.deepEqual(failed.slice(0, 5).map((s) => `m${s.n}: ${s.error}`), [], "every publish is acked");
      const acked = pub.sent.filter((s) => s.ack);
      const duplicates = acked.filter((s) => s.ack!.duplicate).length;
      const records = await kcatRead(topic, undefined, acked.length);
      checkKafka(records, pub.sent, producer.clientId);
      assert.ok(pub.epochs.size >= CYCLES + 1, `each of the ${CYCLES + 1} lives wrote for the producer`);

      const kafkaChecked = performance.now();
      const { seen } = group;
      await until(
        `the consumer to get all ${acked.length} records (has ${seen.length})`,
        () => seen.length >= acked.length,
        60_000,
      ).catch(() => {}); // checkConsumer names what is missing
      checkConsumer(seen, pub.sent);
      await within(Promise.all(group.commits), 60_000, "every commit answered");
      assert.deepEqual(group.commitErrors.map(String).slice(0, 5), [], "every commit is confirmed");
      await within(
        group.sub.close(),
        10_000,
        "the subscription to close (its commits confirmed, unsubscribed)",
      );

      const perPartition = [0, 1, 2].map((p) => records.filter((r) => r.partition === p).length);
      const sorted = [...failoverMs].sort((x, y) => x - y);
      console.log(
        `sdk failover ${mode}: ${CYCLES} failovers (kill -9 -> other node live: median ` +
          `${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms); ` +
          `${pub.sent.length} published, ${acked.length} acked (${duplicates} acks marked duplicate), ` +
          `${records.length} records in Kafka (per partition ${perPartition.join("/")}), ` +
          `${seen.length} consumed (${consumerKills} kills while it read; ${wire.counts.redelivered} of ` +
          `${wire.counts.frames} message frames were redeliveries, dropped by the SDK); ` +
          `lives that wrote: ${pub.epochs.size}; ` +
          `${secs(startedAt, cyclesDone)} s of cycles, ${
            secs(cyclesDone, kafkaChecked)
          } s to drain and read Kafka, ` +
          `${secs(kafkaChecked, performance.now())} s for the consumer to finish; ${
            secs(startedAt, performance.now())
          } s in all`,
      );
    } catch (e) {
      await logs.dump(e);
      throw e;
    } finally {
      await pub.stop(0).catch(() => {});
      // Bounded: unsubscribes (after pending commits) within the timeout, then closes anyway.
      await Promise.all([producer.close({ timeoutMs: 5000 }), consumer.close({ timeoutMs: 5000 })]);
      await group?.loop.catch(() => {});
      await ha.close();
    }
  });
}
