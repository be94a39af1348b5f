/**
 * Soak of HA failover and failback (issue 10, "HA under adverse conditions"): a live/backup pair of
 * real bridge processes (a at priority 200, b at 100, failback allowed) carries an SDK producer
 * (exactly-once seqs, 100 B and ~1 KB records, at a steady rate) and a committing group consumer,
 * while the script kills -9 the live a, waits for b to take over, restarts a and waits for b to hand
 * back, N times. Then kcat (read_committed, librdkafka) checks what Kafka holds against every ack,
 * and the consumer's deliveries against the acks. Options: see HELP below (--help prints it).
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).
 */
import { parseArgs } from "node:util";
import { EdgeBridgeClient, type Message, type Subscription } from "../src/client/mod.ts";
import type { BridgeProcess } from "../tests/helpers/bridge.ts";
import { HaCluster } from "../tests/helpers/ha.ts";
import { brokers, createTopics, uniqueTopic } from "../tests/helpers/kafka.ts";
import { kcatRead, type KcatRecord } from "../tests/helpers/kcat.ts";
import { mixedValue, SteadyProducer } from "../tests/helpers/steady_producer.ts";
import { until, within } from "../tests/helpers/wait.ts";
import {
  checkConsumer,
  checkKafka,
  type CycleTimes,
  failures,
  type ModeResult,
  positionOf,
} from "./soak_checks.ts";
import { percentile } from "./stats.ts";

const MODES = ["heartbeat", "file-lock"] as const;
type Mode = typeof MODES[number];

const USAGE =
  "Usage: deno task soak:failover [--cycles N] [--mode heartbeat|file-lock|both] [--rate R] [--warmup S] [--out FILE] [--logs]";
const HELP = `${USAGE}

For each HA mode, runs a live/backup pair of bridges (a: priority 200, b: priority 100, failback on)
with an SDK producer and a committing group consumer on a 3-partition topic, and N times:
kill -9 the live a, wait for b to be live, restart a, wait for b to hand back (a live, b backup).
Then reads the topic with kcat and reports lost records, duplicates, stale-epoch writes, what the
consumer missed or got twice, commit outcomes, and failover/failback times as the producer saw them.

  --cycles N   kill/failback cycles per mode (default 10)
  --mode M     heartbeat, file-lock, or both (default both: heartbeat, then file-lock)
  --rate R     records the producer publishes per second (default 100); every fourth is ~1 KB,
               the others 100 B
  --warmup S   seconds of publishing before the first kill: a broker started seconds before is
               slow for ~10 s (default 10; 0: none)
  --out FILE   also append the report's tables to FILE (e.g. docs/benchmarks.md)
  --logs       write every bridge's and SDK client's log to a file even when the run passes
               (a failed run always does; the file is named in the output)

Exit code: 0 when every check passed; 1 when a record acked was lost, Kafka holds a record twice,
a record carries an epoch older than one before it in its partition (a zombie's write), the consumer
missed an acked record, a publish was refused or never answered, or the run could not complete
(its logs are then written to a file, named on stderr); 2 for bad arguments or no broker.

Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start; port 19092).`;

function usageError(message: string): never {
  console.error(`soak:failover: ${message}\n${USAGE}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      cycles: { type: "string", default: "10" },
      mode: { type: "string", default: "both" },
      rate: { type: "string", default: "100" },
      warmup: { type: "string", default: "10" },
      out: { type: "string" },
      logs: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
} catch (e) {
  usageError((e as Error).message); // unknown option, missing value, stray argument
}
const opts = parsed.values;
if (opts.help) {
  console.log(HELP);
  Deno.exit(0);
}

function numberArg(name: string, text: string, min: number, integer = false): number {
  const n = Number(text);
  if (text.trim() === "" || !Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
    usageError(`--${name} must be ${integer ? "an integer" : "a number"} from ${min}, got "${text}"`);
  }
  return n;
}
const CYCLES = numberArg("cycles", opts.cycles, 1, true);
const RATE = numberArg("rate", opts.rate, 0.1);
const WARMUP_S = numberArg("warmup", opts.warmup, 0);
if (opts.mode !== "both" && !(MODES as readonly string[]).includes(opts.mode)) {
  usageError(`--mode must be heartbeat, file-lock or both, got "${opts.mode}"`);
}
const modes: Mode[] = opts.mode === "both" ? [...MODES] : [opts.mode as Mode];
if (opts.out === "") usageError("--out needs a file name");

Deno.env.set("KAFKA_BROKERS", Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092");

/**
 * The broker's smallest group.min.session.timeout.ms. A new live's consumer-group member gets
 * partitions only once the killed member's session has expired (kafkajs has no static membership).
 */
const SESSION_TIMEOUT_MS = 6000;
/** b may hold a failback back for up to a minute (ha.maxHandoversPerMinute, 4 by default). */
const FAILBACK_TIMEOUT_MS = 120_000;
const FAILOVER_TIMEOUT_MS = 60_000;
/** Waits for the producer's outbox to be answered, and for the consumer to read everything. */
const DRAIN_TIMEOUT_MS = 60_000;
const CONSUMER_TIMEOUT_MS = 120_000;
/** The producer stops adding to its outbox above this many unanswered publishes (the SDK's limit is 10,000). */
const OUTBOX_HIGH_WATER = 5000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** True if a TCP connection to one of the brokers opens within 5 s. */
async function brokerReachable(list: string): Promise<boolean> {
  for (const address of list.split(",")) {
    const at = address.lastIndexOf(":");
    const connecting = Deno.connect({ hostname: address.slice(0, at), port: Number(address.slice(at + 1)) });
    try {
      (await within(connecting, 5000, address)).close();
      return true;
    } catch {
      connecting.then((c) => c.close(), () => {});
    }
  }
  return false;
}

/** Record n's value: `soak<n>:` padded to ~1 KB for every fourth record, to 100 B for the others. */
const valueOf = (n: number) => mixedValue("soak", n);

/**
 * A group consumer that commits each message as it is handled, without waiting for the answer before
 * the next (a commit made just before a kill is answered only once the group has settled on the new
 * live, which waits for the dead member's session to expire). Every commit's outcome is kept.
 */
class CommittingConsumer {
  readonly sub: Subscription;
  readonly seen: Message[] = [];
  /** How often each position was handed over: the SDK must hand each over once. */
  readonly positions = new Map<string, number>();
  readonly commits: Promise<void>[] = [];
  confirmed = 0;
  readonly commitErrors: string[] = [];
  error?: unknown;
  readonly loop: Promise<void>;

  constructor(client: EdgeBridgeClient, topic: string, group: string) {
    const sub = this.sub = client.subscribe(topic, { mode: "group", group, from: "earliest" });
    this.loop = (async () => {
      for await (const m of sub) {
        this.seen.push(m);
        const at = positionOf(m);
        this.positions.set(at, (this.positions.get(at) ?? 0) + 1);
        this.commits.push(
          sub.commit(m).then(
            () => void this.confirmed++,
            (e) => void this.commitErrors.push(`${at}: ${(e as { code?: string }).code ?? ""} ${e}`),
          ),
        );
      }
    })().catch((e) => void (this.error = e));
  }

  get unansweredCommits(): number {
    return this.commits.length - this.confirmed - this.commitErrors.length;
  }
}

/** Every bridge process of a run (a restarted node is a new process) and the SDK clients' log lines. */
class RunLogs {
  readonly bridges: { name: string; bridge: BridgeProcess }[] = [];
  readonly client: string[] = [];

  watch(label: string, c: EdgeBridgeClient): void {
    c.addEventListener("log", (e) => {
      this.client.push(`${e.detail.time.toISOString()} ${label} [${e.detail.level}] ${e.detail.message}`);
    });
  }

  /** Writes every log to a file; returns its name. */
  async dump(mode: Mode, why: string[]): Promise<string> {
    const file = await Deno.makeTempFile({ prefix: `soak-failover-${mode}-`, suffix: ".log" });
    const parts = [`==== why ====\n${why.join("\n")}`];
    parts.push(
      ...this.bridges.map(({ name, bridge }, i) =>
        `==== bridge ${name} (process ${i + 1}, pid ${bridge.pid}) ====\n${bridge.lines.join("\n")}`
      ),
    );
    parts.push(`==== SDK clients ====\n${this.client.join("\n")}`);
    await Deno.writeTextFile(file, parts.join("\n\n") + "\n");
    return file;
  }
}

/** The cluster running now, so that Ctrl-C does not leave bridge processes behind. */
let running: HaCluster | undefined;
Deno.addSignalListener("SIGINT", () => {
  console.error("soak:failover: interrupted; stopping the bridges");
  (running?.close() ?? Promise.resolve()).finally(() => Deno.exit(130));
});

async function soak(mode: Mode): Promise<ModeResult> {
  const topic = uniqueTopic(`soak-failover-${mode}`);
  await createTopics([{ name: topic, partitions: 3 }]);
  const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=true",
    `kafka.consumer.sessionTimeoutMs=${SESSION_TIMEOUT_MS}`,
    // A group's SyncGroup waits for the rebalance, which waits for the killed member's session to
    // expire: under a shorter request timeout (the HA helpers' 3 s) that wait crashes and restarts
    // the bridge's consumer, again and again.
    `kafka.requestTimeoutMs=${2 * SESSION_TIMEOUT_MS}`,
  ]);
  running = ha;
  const logs = new RunLogs();
  const start = async (name: string) => logs.bridges.push({ name, bridge: await ha.start(name) });
  const urls = [ha.url("a"), ha.url("b")];
  const producerClient = new EdgeBridgeClient({ urls });
  const consumerClient = new EdgeBridgeClient({ urls });
  logs.watch("producer", producerClient);
  logs.watch("consumer", consumerClient);
  const producer = new SteadyProducer(producerClient, topic, {
    rate: RATE,
    valueOf,
    outboxHighWater: OUTBOX_HIGH_WATER,
  });
  const errors: string[] = [];
  const times: CycleTimes[] = [];
  let consumer: CommittingConsumer | undefined;
  let checks: ReturnType<typeof checkKafka> | undefined;
  let consumerChecks: ReturnType<typeof checkConsumer> | undefined;
  let records: KcatRecord[] = [];
  const note = (e: unknown) => errors.push(e instanceof Error ? e.message : String(e));
  try {
    await start("a");
    await ha.waitRole("a", "live");
    await start("b");
    await ha.waitRole("b", "backup");
    consumer = new CommittingConsumer(consumerClient, topic, uniqueTopic("soak-group"));
    producer.start();
    if (WARMUP_S > 0) console.error(`soak:failover ${mode}: warming up for ${WARMUP_S} s`);
    await sleep(WARMUP_S * 1000);
    const firstEpoch = (await ha.readyz("a"))!.epoch;
    await until(
      `the producer's first ack from a (epoch ${firstEpoch})`,
      () => producer.firstAck(firstEpoch, 0) !== undefined,
      FAILOVER_TIMEOUT_MS,
    );

    for (let i = 1; i <= CYCLES; i++) {
      await sleep(200 + Math.random() * 600); // land at a random point of a's traffic and of the beat
      const killedAt = performance.now();
      const killedWall = Date.now();
      await ha.stop("a", "SIGKILL");
      await ha.waitRole("b", "live", FAILOVER_TIMEOUT_MS);
      const bEpoch = (await ha.readyz("b"))!.epoch;
      let failover: { at: number } | undefined;
      await until(
        `the producer's first ack from b (epoch ${bEpoch}) after a's kill`,
        () => (failover = producer.firstAck(bEpoch, killedAt)) !== undefined,
        FAILOVER_TIMEOUT_MS,
      );

      const restartedAt = performance.now();
      const restartedWall = Date.now();
      await start("a");
      await ha.waitRole("a", "live", FAILBACK_TIMEOUT_MS);
      const restartToLiveMs = performance.now() - restartedAt;
      await ha.waitRole("b", "backup", FAILOVER_TIMEOUT_MS);
      const aEpoch = (await ha.readyz("a"))!.epoch;
      const stepDown = ha.transitions().filter((t) =>
        t.node === "b" && t.to === "draining" && Date.parse(t.time) >= restartedWall
      ).at(-1);
      if (!stepDown) {
        const recent = ha.transitions().slice(-8).map((t) => `${t.time} ${t.node} -> ${t.to}: ${t.reason}`);
        throw new Error(
          `a is live again but b logged no "stepping down" since a's restart; transitions:\n${
            recent.join("\n")
          }`,
        );
      }
      const stepDownWall = Date.parse(stepDown.time);
      let failback: { wall: number } | undefined;
      await until(
        `the producer's first ack from a (epoch ${aEpoch}) after the failback`,
        () => (failback = producer.firstAck(aEpoch, stepDownWall, true)) !== undefined,
        FAILOVER_TIMEOUT_MS,
      );
      const t: CycleTimes = {
        failoverMs: failover!.at - killedAt,
        failbackMs: failback!.wall - stepDownWall,
        restartToLiveMs,
      };
      times.push(t);
      console.error(
        `soak:failover ${mode} cycle ${i}/${CYCLES}: failover ${t.failoverMs.toFixed(0)} ms, ` +
          `failback ${t.failbackMs.toFixed(0)} ms (a restart -> live ${t.restartToLiveMs.toFixed(0)} ms), ` +
          `${producer.acks.length} acked`,
      );
      console.error(
        `  kill at ${new Date(killedWall).toISOString()}, first ack from b at ${
          new Date(killedWall + t.failoverMs).toISOString()
        }`,
      );
    }
  } catch (e) {
    note(e); // the data written so far is checked all the same
  }

  try {
    await producer.stop(DRAIN_TIMEOUT_MS);
  } catch (e) {
    note(e);
  }
  try {
    const ackedPositions = new Set(producer.sent.filter((s) => s.ack).map((s) => positionOf(s.ack!)));
    records = await kcatRead(topic, undefined, ackedPositions.size);
    checks = checkKafka(records, producer.sent, producerClient.clientId);
    if (consumer) {
      const c = consumer;
      await until(
        `the consumer to get every acked record (${c.positions.size} of ${ackedPositions.size})`,
        () => [...ackedPositions].every((at) => c.positions.has(at)) || c.error !== undefined,
        CONSUMER_TIMEOUT_MS,
      ).catch(() => {}); // checkConsumer counts what is missing
      consumerChecks = checkConsumer(c.positions, producer.sent);
      await within(Promise.all(c.commits), DRAIN_TIMEOUT_MS, "every commit answered").catch(note);
      await within(c.sub.close(), 10_000, "the subscription to close (commits confirmed, unsubscribed)")
        .catch(note);
    }
  } catch (e) {
    note(e);
  } finally {
    // Bounded: whatever is still unanswered is rejected (and counted as unanswered above).
    await Promise.all([producerClient.close({ timeoutMs: 5000 }), consumerClient.close({ timeoutMs: 5000 })]);
    await consumer?.loop;
  }

  const acked = producer.sent.filter((s) => s.ack);
  const heldBack = logs.bridges.filter((b) => b.name === "b")
    .reduce((n, b) => n + b.bridge.logs("handover held back: too many role changes this minute").length, 0);
  const result: ModeResult = {
    mode,
    cyclesDone: times.length,
    errors,
    times,
    published: producer.sent.length,
    acked: acked.length,
    duplicateAcks: acked.filter((s) => s.ack!.duplicate).length,
    failedPublishes: producer.sent.filter((s) => s.error).map((s) => `soak${s.n}: ${s.error}`),
    unanswered: producer.sent.filter((s) => !s.ack && !s.error).length,
    pauses: producer.pauses,
    epochs: new Set(producer.acks.map((a) => a.epoch)).size,
    kafkaRecords: records.length,
    perPartition: [0, 1, 2].map((p) => records.filter((r) => r.partition === p).length),
    lost: checks?.lost ?? [],
    duplicatesInKafka: checks?.duplicates ?? [],
    staleEpoch: checks?.stale ?? [],
    unacked: checks?.unacked ?? 0,
    consumed: consumer?.seen.length ?? 0,
    consumerMissed: consumerChecks?.missed ?? [],
    consumerTwice: consumerChecks?.twice ?? [],
    consumerUnknown: consumerChecks?.unknown ?? 0,
    consumerError: consumer?.error === undefined ? undefined : String(consumer.error),
    commits: consumer?.commits.length ?? 0,
    commitsConfirmed: consumer?.confirmed ?? 0,
    commitErrors: consumer?.commitErrors ?? [],
    commitsUnanswered: consumer?.unansweredCommits ?? 0,
    heldBack,
  };
  if (!checks && errors.length === 0) errors.push("Kafka was not checked");
  const why = failures(result);
  if (why.length > 0 || opts.logs) result.logFile = await logs.dump(mode, why.length ? why : ["--logs"]);
  await ha.close();
  running = undefined;
  return result;
}

const fmt = (xs: number[]) =>
  xs.length === 0
    ? "- | - | -"
    : `${percentile(xs, 0.5).toFixed(0)} | ${percentile(xs, 0.99).toFixed(0)} | ${
      Math.max(...xs).toFixed(0)
    }`;

const results: ModeResult[] = [];
const brokerList = brokers();
if (!(await brokerReachable(brokerList))) {
  console.error(
    `soak:failover: no Kafka broker answers at ${brokerList}: start one with scripts/kafka.sh start ` +
      "(port 19092), or set KAFKA_BROKERS",
  );
  Deno.exit(2);
}
for (const mode of modes) results.push(await soak(mode));

const table = [
  `${CYCLES} cycles per mode of: kill -9 of the live a, b takes over, a restarts, b hands back (failback, ` +
  `1 s hold-down). An SDK producer (exactly-once seqs) publishes ${RATE} records/s (3 in 4 of 100 B, ` +
  `1 in 4 of ~1 KB) to a 3-partition topic, a group consumer commits each record` +
  (WARMUP_S > 0 ? `; ${WARMUP_S} s of warm-up first.` : "; no warm-up."),
  "",
  "| mode | cycles | published | acked | duplicate acks | lost | twice in Kafka | stale-epoch | consumer missed | consumer got twice | commits failed | commits unanswered |",
  "|---|---|---|---|---|---|---|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.mode} | ${r.cyclesDone}/${CYCLES} | ${r.published} | ${r.acked} | ${r.duplicateAcks} | ${r.lost.length} | ` +
    `${r.duplicatesInKafka.length} | ${r.staleEpoch.length} | ${r.consumerMissed.length} | ` +
    `${r.consumerTwice.length} | ${r.commitErrors.length} | ${r.commitsUnanswered} |`
  ),
  "",
  "| mode | failover p50 ms | p99 ms | max ms | failback p50 ms | p99 ms | max ms | a restart -> live p50 ms | p99 ms | max ms |",
  "|---|---|---|---|---|---|---|---|---|---|",
  ...results.map((r) =>
    `| ${r.mode} | ${fmt(r.times.map((t) => t.failoverMs))} | ${fmt(r.times.map((t) => t.failbackMs))} | ` +
    `${fmt(r.times.map((t) => t.restartToLiveMs))} |`
  ),
  "",
  "Failover: kill -9 of a -> the producer's first ack at b's epoch. Failback: b logs \"stepping down\" " +
  "(a has been a healthy backup for the hold-down) -> the producer's first ack at a's new epoch. " +
  "a restart -> live: a's process spawned -> its /readyz says live (process start, Kafka, hold-down, and " +
  "any wait for b's flap budget, ha.maxHandoversPerMinute).",
].join("\n");
console.log(table);

let failed = false;
for (const r of results) {
  const tm = r.times;
  console.log(
    `\n${r.mode}: ${r.kafkaRecords} records in Kafka (per partition ${r.perPartition.join("/")}; ` +
      `${r.unacked} no ack named); ${r.epochs} epochs in acks; ${r.failedPublishes.length} publishes refused, ` +
      `${r.unanswered} unanswered; producer paused ${r.pauses} times on a full outbox; ` +
      `consumer: ${r.consumed} handed over, ${r.consumerUnknown} at positions no ack named` +
      `${r.consumerError ? `, ended with ${r.consumerError}` : ""}; ` +
      `commits: ${r.commits} sent, ${r.commitsConfirmed} confirmed; ` +
      `b held a failback back ${r.heldBack} times (flap budget); cycles: ${
        tm.map((t) => `${t.failoverMs.toFixed(0)}/${t.failbackMs.toFixed(0)}`).join(" ")
      } (failover/failback ms)`,
  );
  if (r.consumerTwice.length > 0) {
    console.log(`  consumer got twice, e.g. ${r.consumerTwice.slice(0, 5).join(", ")}`);
  }
  if (r.commitErrors.length > 0) {
    console.log(`  commits failed, e.g.\n    ${r.commitErrors.slice(0, 5).join("\n    ")}`);
  }
  const why = failures(r);
  if (why.length > 0) {
    failed = true;
    console.log(`${r.mode} FAILED:\n- ${why.join("\n- ")}`);
  }
  if (r.logFile) console.log(`every bridge's and client's log: ${r.logFile}`);
}
console.log(failed ? "\nsoak:failover: FAILED" : "\nsoak:failover: passed");

if (opts.out) {
  await Deno.writeTextFile(
    opts.out,
    `\n## Soak: failover and failback\n\nMeasured by \`deno task soak:failover --cycles ${CYCLES} --mode ${opts.mode} --rate ${RATE} --warmup ${WARMUP_S}\` on ${
      new Date().toISOString().slice(0, 10)
    }${failed ? " (the run FAILED: see its output)" : ""}.\n\n${table}\n`,
    { append: true },
  );
  console.error(`soak:failover: appended to ${opts.out}`);
}
Deno.exit(failed ? 1 : 0);
