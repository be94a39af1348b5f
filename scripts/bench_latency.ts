/**
 * Latency at a fixed publish rate: one publisher sends at a steady rate, open loop (as a device
 * would: it never waits for acks), while a broadcast subscriber reads the same topic. Reports
 * publish-to-ack and publish-to-delivery percentiles and the nacks by code, for the plain bridge
 * and the HA one (every produce batch a Kafka transaction). Each measurement follows a warm-up
 * at the same rate whose samples are discarded, because a freshly started broker is slow for
 * its first seconds.
 *
 *   deno task bench:latency [--rates 1000,2000,5000] [--seconds 10] [--warmup 5] [--size 100]
 *     [--no-keyed] [--set key=value]... [--modes plain,ha] [--out FILE]
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { BridgeProcess } from "../tests/helpers/bridge.ts";
import { createTopics, uniqueTopic } from "../tests/helpers/kafka.ts";
import { until } from "../tests/helpers/wait.ts";
import type { TestClient } from "../tests/helpers/ws_client.ts";
import { percentile } from "./stats.ts";

process.removeAllListeners("warning"); // kafkajs' harmless negative-timer warning

const USAGE = `Usage: deno task bench:latency [options]
  --rates R1,R2,...   publish rates in msg/s (default 1000,2000,5000)
  --seconds S         measured seconds per rate (default 10)
  --warmup W          seconds at the same rate before measuring, discarded (default 5)
  --size BYTES        payload size (default 100)
  --keyed, --no-keyed keyed records, key "k" + (i % 64) (default keyed)
  --set key=value     bridge config override for both bridges (repeatable), e.g. kafka.lingerMs=0
  --modes plain,ha    which bridges to measure (default plain,ha)
  --out FILE          also write the markdown table to FILE
  -h, --help          this text
Progress goes to stderr, the markdown table to stdout. Needs KAFKA_BROKERS (default 127.0.0.1:19092).`;

const { values: opts } = parseArgs({
  allowNegative: true,
  options: {
    rates: { type: "string", default: "1000,2000,5000" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "5" },
    size: { type: "string", default: "100" },
    keyed: { type: "boolean", default: true },
    set: { type: "string", multiple: true, default: [] },
    modes: { type: "string", default: "plain,ha" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const RATES = opts.rates.split(",").map(Number);
const SECONDS = Number(opts.seconds), WARMUP = Number(opts.warmup), SIZE = Number(opts.size);
const MODES = opts.modes.split(",");
if (
  RATES.some((r) => !(r > 0)) || !(SECONDS > 0) || !(WARMUP >= 0) || !(SIZE > 0) ||
  MODES.some((m) => m !== "plain" && m !== "ha")
) {
  console.error(`bench:latency: bad option value\n${USAGE}`);
  Deno.exit(2);
}
Deno.env.set("KAFKA_BROKERS", Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092");
const DRAIN_MS = 15_000; // after the last send, how long to wait for the last acks and deliveries
const CREDIT = 10_000; // the bridge's default maxCredit; topped up every CREDIT_STEP deliveries
const CREDIT_STEP = 1_000;

interface Result {
  mode: string;
  rate: number;
  sent: number;
  ack: number[]; // ms, measured publishes only
  delivery: number[];
  nacks: Record<string, number>;
  /** The bridge's own produce requests in the measured window: p50 and p99, as histogram bucket bounds. */
  kafka: [string, string];
  unanswered: number; // publishes (of all phases) with neither ack nor nack after the drain
  undelivered: number; // acked records (of all phases) the subscriber never saw
}

/** Starts the bridge for a mode, ready to serve; an HA bridge is a lone file-lock live. */
async function startBridge(mode: string, tempDirs: string[]): Promise<BridgeProcess> {
  const set: string[] = [];
  if (mode === "ha") {
    const dir = await Deno.makeTempDir({ prefix: "bench-latency-" });
    tempDirs.push(dir);
    set.push("ha.mode=file-lock", `ha.fileLock.dir=${dir}`, `ha.pairId=bench-latency-${Date.now()}`);
  }
  // The user's --set values last, so they win.
  const bridge = await BridgeProcess.start({
    env: { EDGE_BRIDGE_LOG_LEVEL: "info" },
    set: [...set, ...opts.set],
  });
  const ready = async () => (await (await fetch(`${bridge.httpUrl}/readyz`)).json()).ready === true;
  try {
    await until(`${mode} bridge /readyz`, () => ready().catch(() => false), 30_000);
  } catch (e) {
    await stopBridge(bridge);
    throw e;
  }
  return bridge;
}

/** SIGTERM, then SIGKILL if the bridge has not exited within 15 s, so the run always ends. */
async function stopBridge(bridge: BridgeProcess): Promise<void> {
  const timer = setTimeout(() => {
    try {
      bridge.signal("SIGKILL");
    } catch { /* already gone */ }
  }, 15_000);
  try {
    await bridge.stop();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends `total` publishes at `rate`/s on a 5 ms timer: each tick sends whatever the schedule
 * says is due, so slow acks never slow the sender (open loop). Records each send time; resolves
 * with the ms the sending took (total / rate when the schedule held).
 */
function publishAtRate(c: TestClient, topic: string, rate: number, total: number, sentAt: number[]) {
  return new Promise<number>((done, fail) => {
    const t0 = performance.now();
    let sent = 0;
    const timer = setInterval(() => {
      try {
        const due = Math.min(total, Math.round((rate * (performance.now() - t0)) / 1000));
        for (; sent < due; sent++) {
          if (c.ws.readyState !== WebSocket.OPEN) throw new Error(`publisher socket closed after ${sent}`);
          const key = opts.keyed ? `k${sent % 64}` : undefined; // undefined: left out of the JSON
          sentAt[sent] = performance.now();
          c.send({ op: "publish", id: String(sent), topic, key, value: `${sent}|`.padEnd(SIZE, "x") });
        }
        if (sent === total) (clearInterval(timer), done(performance.now() - t0));
      } catch (e) {
        clearInterval(timer);
        fail(e);
      }
    }, 5);
  });
}

/** One measurement: a fresh 3-partition topic, a warm-up then the measured seconds at one rate. */
async function measure(bridge: BridgeProcess, mode: string, rate: number): Promise<Result> {
  const topic = uniqueTopic(`latency-${mode}-${rate}`);
  await createTopics([{ name: topic, partitions: 3 }]);
  // Publish i is sent at about i / rate s, so the first `warm` ones are the warm-up.
  const warm = Math.round(rate * WARMUP), total = warm + Math.round(rate * SECONDS);
  const sentAt: number[] = [], ack: number[] = [], delivery: number[] = [];
  const nacks: Record<string, number> = {};
  let answered = 0, acked = 0, delivered = 0;
  const clients: TestClient[] = [];
  try {
    const pub = await bridge.connect();
    clients.push(pub);
    const sub = await bridge.connect();
    clients.push(sub);
    const { sub: name } = await sub.subscribe(topic, { mode: "broadcast", from: "latest", credit: CREDIT });
    pub.ws.addEventListener("message", (e) => {
      const now = performance.now();
      const f = JSON.parse(e.data as string);
      if (f.op !== "ack" && f.op !== "nack") return;
      answered++;
      if (f.op === "ack") acked++;
      const i = Number(f.id);
      if (i < warm) return;
      if (f.op === "ack") ack.push(now - sentAt[i]);
      else nacks[f.code] = (nacks[f.code] ?? 0) + 1;
    });
    sub.ws.addEventListener("message", (e) => {
      const now = performance.now();
      const f = JSON.parse(e.data as string);
      if (f.op !== "message") return;
      if (++delivered % CREDIT_STEP === 0) sub.send({ op: "credit", sub: name, n: CREDIT_STEP });
      const i = Number(f.value.slice(0, f.value.indexOf("|")));
      if (i >= warm) delivery.push(now - sentAt[i]);
    });
    // The bridge's produce requests are read at the end of the warm-up and after the drain.
    let atWarm: Promise<Map<number, number>> | undefined;
    const warmTimer = setTimeout(() => (atWarm = produceBuckets(bridge)), WARMUP * 1000);
    const sendMs = await publishAtRate(pub, topic, rate, total, sentAt);
    console.error(
      `bench:latency: ${mode} at ${rate} msg/s: sent ${total} in ${(sendMs / 1000).toFixed(2)} s`,
    );
    await until("last acks and deliveries", () => answered === total && delivered >= acked, DRAIN_MS)
      .catch(() =>
        console.error(`bench:latency: ${mode} ${rate}: not all answered/delivered after the drain`)
      );
    clearTimeout(warmTimer);
    const [before, after] = [await (atWarm ?? Promise.resolve(new Map())), await produceBuckets(bridge)];
    const kafka: [string, string] = [bucketQuantile(before, after, 0.5), bucketQuantile(before, after, 0.99)];
    const [unanswered, undelivered] = [total - answered, Math.max(0, acked - delivered)];
    return { mode, rate, sent: total - warm, ack, delivery, nacks, kafka, unanswered, undelivered };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/** The bridge's histogram of produce-request durations: cumulative count per upper bound (s). */
async function produceBuckets(bridge: BridgeProcess): Promise<Map<number, number>> {
  const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
  const buckets = new Map<number, number>();
  for (
    const [, le, n] of text.matchAll(/^edge_bridge_kafka_produce_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)
  ) {
    buckets.set(le === "+Inf" ? Infinity : Number(le), Number(n));
  }
  return buckets;
}

/** The q-quantile of the requests between two scrapes, as "<= bound ms" (a histogram knows no better). */
function bucketQuantile(before: Map<number, number>, after: Map<number, number>, q: number): string {
  const total = (after.get(Infinity) ?? 0) - (before.get(Infinity) ?? 0);
  if (total === 0) return "-";
  for (const [le, n] of [...after].sort((a, b) => a[0] - b[0])) {
    if (n - (before.get(le) ?? 0) >= q * total) {
      return le === Infinity ? "> max" : `<= ${+(le * 1000).toFixed(1)}`;
    }
  }
  return "-";
}

const ms = (xs: number[], p: number) => (xs.length ? percentile(xs, p).toFixed(1) : "-");

function table(results: Result[]): string {
  const rows = results.map((r) => {
    const codes = Object.entries(r.nacks);
    const nacks = codes.reduce((n, [, k]) => n + k, 0);
    const nackCell = nacks ? `${nacks} (${codes.map(([c, k]) => `${c} ${k}`).join(", ")})` : "0";
    const ackCells = [0.5, 0.99, 0.999, 1].map((p) => ms(r.ack, p));
    const deliveryCells = [0.5, 0.99, 0.999].map((p) => ms(r.delivery, p));
    const cells = [r.mode, r.rate, r.sent, r.ack.length, nackCell, ...ackCells, ...deliveryCells, ...r.kafka];
    return `| ${cells.join(" | ")} |`;
  });
  const notes = results.filter((r) => r.unanswered || r.undelivered).map((r) =>
    `Note: ${r.mode} at ${r.rate} msg/s: ${r.unanswered} publishes unanswered and ${r.undelivered} acked ` +
    `records undelivered ${DRAIN_MS / 1000} s after the last send (warm-up included).`
  );
  return [
    `One publisher at a fixed rate (open loop) and one broadcast subscriber on a fresh 3-partition topic; ` +
    `${SECONDS} s per rate after a ${WARMUP} s warm-up at the same rate (discarded); ${SIZE} B values, ` +
    `${opts.keyed ? "keyed (64 keys)" : "keyless"}; latencies in ms.`,
    "",
    "| mode | rate msg/s | sent | acked | nacks | ack p50 | ack p99 | ack p99.9 | ack max | " +
    "delivery p50 | delivery p99 | delivery p99.9 | Kafka request p50 | Kafka request p99 |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "Kafka request: the bridge's own produce requests in the measured window (its " +
    "edge_bridge_kafka_produce_seconds histogram), as bucket bounds.",
    `Bridge settings: ${opts.set.length ? opts.set.join(", ") : "defaults"}.`,
    ...notes,
  ].join("\n");
}

const results: Result[] = [];
const tempDirs: string[] = [];
try {
  for (const mode of MODES) {
    console.error(`bench:latency: starting the ${mode} bridge`);
    const bridge = await startBridge(mode, tempDirs);
    try {
      for (const rate of RATES) {
        console.error(`bench:latency: ${mode} at ${rate} msg/s: ${WARMUP} s warm-up + ${SECONDS} s`);
        const r = await measure(bridge, mode, rate);
        results.push(r);
        console.error(`bench:latency: ${mode} at ${rate} msg/s: ${r.ack.length}/${r.sent} acked`);
      }
    } finally {
      await stopBridge(bridge);
    }
  }
} finally {
  await Promise.all(tempDirs.map((d) => Deno.remove(d, { recursive: true })));
}

const out = table(results);
console.log(out);
if (opts.out) {
  await Deno.writeTextFile(opts.out, out + "\n");
  console.error(`bench:latency: wrote ${opts.out}`);
}
