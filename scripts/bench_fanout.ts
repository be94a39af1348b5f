/**
 * Fan-out: N idle broadcast subscribers on one topic (browsers watching a feed),
 * then M records published. Reports, per N:
 * - how long subscribing all of them took;
 * - deliveries per second to all of them (N x M over the time from the first
 *   publish to the last delivery);
 * - the bridge's RSS growth per subscriber;
 * - TCP connections the bridge holds to the broker.
 *
 *   deno task bench:fanout [--subscribers 1000,5000,10000] [--records 50] [--size 100] [--timeout 180]
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start). Subscribers
 * are raw WebSockets in this process that only count what they receive.
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { BridgeProcess } from "../tests/helpers/bridge.ts";
import { createTopics, uniqueTopic } from "../tests/helpers/kafka.ts";
import { rssBytes, tcpConnectionsTo } from "./proc_stats.ts";

process.removeAllListeners("warning"); // kafkajs' harmless negative-timer warning

const USAGE = `Usage: deno task bench:fanout [options]
  --subscribers N1,N2,...  idle broadcast subscribers per round (default 1000,5000,10000)
  --records M              records published per round (default 50)
  --size BYTES             value size (default 100)
  --timeout S              give a round up after S seconds (default 180)
  -h, --help               this text`;

const { values: opts } = parseArgs({
  options: {
    subscribers: { type: "string", default: "1000,5000,10000" },
    records: { type: "string", default: "50" },
    size: { type: "string", default: "100" },
    timeout: { type: "string", default: "180" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const COUNTS = opts.subscribers.split(",").map(Number);
const M = Number(opts.records), SIZE = Number(opts.size), TIMEOUT_MS = Number(opts.timeout) * 1000;
if (COUNTS.some((n) => !(n > 0)) || !(M > 0) || !(SIZE > 0) || !(TIMEOUT_MS > 0)) {
  console.error(`bench:fanout: bad option value\n${USAGE}`);
  Deno.exit(2);
}
const brokers = Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092";
Deno.env.set("KAFKA_BROKERS", brokers);
const brokerPort = Number(brokers.split(",")[0].split(":").pop());
const CONNECT_WAVE = 250; // subscribers connecting at once

interface Round {
  n: number;
  subscribed: number;
  subscribeMs: number;
  deliveries: number;
  deliverMs: number;
  kibPerSubscriber: number;
  brokerConnections: number;
  note?: string;
}

/** An idle browser: subscribes, then only counts the records it receives. */
class Subscriber {
  received = 0;
  readonly ws: WebSocket;
  readonly subscribed: Promise<boolean>;
  constructor(url: string, topic: string, onMessage: () => void) {
    this.ws = new WebSocket(url);
    this.subscribed = new Promise((resolve) => {
      this.ws.onopen = () =>
        this.ws.send(JSON.stringify({
          op: "subscribe",
          id: "s",
          sub: "feed",
          topic,
          mode: "broadcast",
          from: "latest",
          credit: 2 * M,
        }));
      this.ws.onmessage = (e) => {
        const text = e.data as string;
        if (text.startsWith('{"op":"message"')) {
          this.received++;
          onMessage();
        } else if (text.includes('"op":"subscribed"')) resolve(true);
        else if (text.includes('"op":"error"')) resolve(false);
      };
      this.ws.onerror = () => resolve(false);
      this.ws.onclose = () => resolve(false);
    });
  }
  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((r) => {
      this.ws.addEventListener("close", () => r(), { once: true });
      this.ws.close();
    });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    p,
    new Promise<never>((
      _,
      reject,
    ) => (timer = setTimeout(() => reject(new Error(`${what}: over ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

async function round(bridge: BridgeProcess, n: number): Promise<Round> {
  const topic = uniqueTopic(`fanout-${n}`);
  await createTopics([{ name: topic, partitions: 3 }]);
  // One subscriber first, so the bridge's own start-up (Kafka clients, JIT) is not counted per subscriber.
  const warm = new Subscriber(bridge.url, topic, () => {});
  await withTimeout(warm.subscribed, TIMEOUT_MS, "the first subscriber");
  await new Promise((r) => setTimeout(r, 1000));
  const rss0 = rssBytes(bridge.pid);
  const subs: Subscriber[] = [];
  const result: Round = {
    n,
    subscribed: 0,
    subscribeMs: NaN,
    deliveries: 0,
    deliverMs: NaN,
    kibPerSubscriber: NaN,
    brokerConnections: NaN,
  };
  let allDelivered: () => void = () => {};
  const delivered = new Promise<void>((r) => (allDelivered = r));
  let total = 0;
  const onMessage = () => {
    if (++total === n * M) allDelivered();
  };
  try {
    const t0 = performance.now();
    for (let i = 0; i < n; i += CONNECT_WAVE) {
      const wave = Array.from(
        { length: Math.min(CONNECT_WAVE, n - i) },
        () => new Subscriber(bridge.url, topic, onMessage),
      );
      subs.push(...wave);
      const ok = await withTimeout(Promise.all(wave.map((s) => s.subscribed)), TIMEOUT_MS, "subscribing");
      result.subscribed += ok.filter(Boolean).length;
      console.error(
        `bench:fanout: ${n}: ${result.subscribed} subscribed after ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s`,
      );
    }
    result.subscribeMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 1000)); // let the bridge settle before reading its memory
    result.kibPerSubscriber = (rssBytes(bridge.pid) - rss0) / 1024 / n;
    result.brokerConnections = tcpConnectionsTo(bridge.pid, brokerPort);
    if (result.subscribed < n) throw new Error(`only ${result.subscribed} of ${n} subscribed`);

    const pub = await bridge.connect();
    try {
      const t1 = performance.now();
      for (let i = 0; i < M; i++) {
        pub.send({ op: "publish", id: `p${i}`, topic, value: `${i}:`.padEnd(SIZE, "x") });
      }
      await withTimeout(delivered, TIMEOUT_MS, "delivering");
      result.deliverMs = performance.now() - t1;
    } finally {
      await pub.close();
    }
  } catch (e) {
    result.note = (e as Error).message;
  } finally {
    result.deliveries = total;
    await Promise.all([...subs, warm].map((s) => s.close()));
  }
  return result;
}

const rounds: Round[] = [];
for (const n of COUNTS) {
  // A fresh bridge per round, so its RSS growth is this round's subscribers' alone.
  const bridge = await BridgeProcess.start({
    env: { EDGE_BRIDGE_LOG_LEVEL: "info" },
    set: ["server.maxConnections=20000"],
  });
  try {
    console.error(`bench:fanout: ${n} subscribers, ${M} records of ${SIZE} B`);
    rounds.push(await round(bridge, n));
  } finally {
    await bridge.stop();
  }
}

const f = (x: number, digits = 0) =>
  Number.isFinite(x) ? x.toLocaleString("en", { maximumFractionDigits: digits }) : "-";
console.log([
  `N idle broadcast subscribers (from latest) on one 3-partition topic, then ${M} records of ${SIZE} B published.`,
  "",
  "| subscribers | subscribed | time to subscribe all (s) | deliveries | deliveries/s | bridge RSS per subscriber (KiB) | broker connections held by the bridge |",
  "|---|---|---|---|---|---|---|",
  ...rounds.map((r) =>
    `| ${f(r.n)} | ${f(r.subscribed)} | ${f(r.subscribeMs / 1000, 1)} | ${f(r.deliveries)} | ${
      f(r.deliveries / (r.deliverMs / 1000))
    } | ${f(r.kibPerSubscriber, 1)} | ${f(r.brokerConnections)} |`
  ),
  "",
  ...rounds.filter((r) => r.note).map((r) => `Note: ${f(r.n)} subscribers: ${r.note}.`),
].join("\n"));
