/**
 * Publish throughput: the bridge against a raw kafkajs producer and kcat
 * (librdkafka, the ceiling), doing the same work in the same run: N records of
 * S bytes, acks=all, every record confirmed. Rounds are interleaved and the
 * median is reported, as ratios, because shared machines are noisy.
 *
 *   deno task bench [--records N] [--size BYTES] [--rounds R] [--out docs/benchmarks.md] [--profile DIR]
 *
 * --profile DIR: after the rounds, one more "bridge (4 clients)" run of each bridge under the V8
 * CPU profiler (scripts/cpu_profile.ts); writes DIR/bridge-4clients.{cpuprofile,md} and
 * DIR/bridge-ha-4clients.{cpuprofile,md}. The table does not include these runs.
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { Kafka, logLevel } from "kafkajs";
import { BridgeProcess } from "../tests/helpers/bridge.ts";
import { freePort } from "../tests/helpers/ha.ts";
import { createTopics } from "../tests/helpers/kafka.ts";
import type { TestClient } from "../tests/helpers/ws_client.ts";
import { median, percentile } from "./stats.ts";
import { cpuSeconds } from "./proc_stats.ts";
import { formatMarkdown, startProfile, summarize } from "./cpu_profile.ts";

process.removeAllListeners("warning"); // kafkajs' harmless negative-timer warning

const { values: opts } = parseArgs({
  options: {
    records: { type: "string", default: "20000" },
    size: { type: "string", default: "100" },
    rounds: { type: "string", default: "3" },
    out: { type: "string" },
    profile: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(
    "Usage: deno task bench [--records N] [--size BYTES] [--rounds R] [--out FILE] [--profile DIR]",
  );
  Deno.exit(0);
}
const ROOT = new URL("../", import.meta.url).pathname;
const N = Number(opts.records), SIZE = Number(opts.size), ROUNDS = Number(opts.rounds);
const brokers = Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092";
Deno.env.set("KAFKA_BROKERS", brokers);
const WINDOW = 256; // in-flight publishes, the bridge's default per connection
const payload = (i: number) => `${i}:`.padEnd(SIZE, "x");

async function kcatRun(topic: string): Promise<number> {
  const lines = Array.from({ length: N }, (_, i) => payload(i)).join("\n") + "\n";
  const t0 = performance.now();
  const child = new Deno.Command("kcat", {
    args: ["-P", "-b", brokers, "-t", topic, "-X", "acks=all", "-X", "enable.idempotence=true"],
    stdin: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(lines));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  return performance.now() - t0;
}

/**
 * The bridge writes four headers with every record (eb-message-id, eb-client-id, eb-node,
 * eb-epoch); "same records" writes them too, so the ratio compares the same Kafka work.
 */
function bridgeLikeHeaders(i: number): Record<string, string> {
  const clientId = "0b6f8c1e-2a4d-4f7b-9c3e-5d2a1b0c9e8f"; // a session id, as the bridge uses by default
  return {
    "eb-message-id": `${clientId}:0-${i}`,
    "eb-client-id": clientId,
    "eb-node": "bench-host",
    "eb-epoch": "0",
  };
}

async function kafkajsRun(topic: string, withHeaders: boolean): Promise<number> {
  const kafka = new Kafka({ brokers: brokers.split(","), logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < N; i += WINDOW) {
    const messages = Array.from({ length: Math.min(WINDOW, N - i) }, (_, j) => ({
      value: payload(i + j),
      headers: withHeaders ? bridgeLikeHeaders(i + j) : undefined,
    }));
    await producer.send({ topic, acks: -1, messages });
  }
  const ms = performance.now() - t0;
  await producer.disconnect();
  return ms;
}

let runs = 0;

/**
 * `sequenced`: exactly-once publishing, as the SDK does it: a hello with a fresh clientId per
 * run, `seq` on every publish and `acked` = the highest seq up to which every ack is in.
 */
async function bridgeRun(
  topic: string,
  clients: TestClient[],
  sequenced = false,
): Promise<{ ms: number; latencies: number[] }> {
  const per = Math.ceil(N / clients.length);
  const latencies: number[] = [];
  const run = ++runs;
  if (sequenced) {
    await Promise.all(
      clients.map((c, ci) => c.request({ op: "hello", clientId: `bench-${ci}`, instance: `run-${run}` })),
    );
  }
  const t0 = performance.now();
  await Promise.all(clients.map(async (c, ci) => {
    let next = 0, acked = 0, floor = 0;
    const answered = new Uint8Array(per + 1);
    const sentAt = new Map<string, number>();
    await new Promise<void>((done, fail) => {
      const pump = () => {
        while (next < per && next - acked < WINDOW) {
          const id = `${ci}-${next}`;
          sentAt.set(id, performance.now());
          const seq = sequenced ? { seq: next + 1, ...(floor > 0 ? { acked: floor } : {}) } : {};
          c.send({ op: "publish", id, topic, value: payload(next++), ...seq });
        }
      };
      const onMessage = (e: MessageEvent) => {
        const f = JSON.parse(e.data as string);
        if (f.id === undefined || !sentAt.has(f.id)) return;
        if (f.op === "nack") return fail(new Error(`nack: ${e.data}`));
        if (f.op !== "ack") return;
        if (sequenced) {
          answered[Number(f.id.split("-")[1]) + 1] = 1;
          while (floor < per && answered[floor + 1]) floor++;
        }
        latencies.push(performance.now() - sentAt.get(f.id)!);
        if (++acked === per) {
          c.ws.removeEventListener("message", onMessage);
          return done();
        }
        pump();
      };
      c.ws.addEventListener("message", onMessage);
      pump();
    });
  }));
  return { ms: performance.now() - t0, latencies };
}

/** One bridgeRun under the CPU profiler of the bridge at `inspect`; writes DIR/NAME.cpuprofile and .md. */
async function profiledRun(name: string, inspect: string, clients: TestClient[]): Promise<void> {
  const profiler = await startProfile(inspect);
  const { ms } = await bridgeRun(topic, clients);
  const profile = await profiler.stop();
  const md = `## ${name}: ${N} records of ${SIZE} B in ${Math.round(ms)} ms (profiled)\n\n` +
    formatMarkdown(summarize(profile));
  await Deno.mkdir(opts.profile!, { recursive: true });
  await Deno.writeTextFile(`${opts.profile}/${name}.cpuprofile`, JSON.stringify(profile));
  await Deno.writeTextFile(`${opts.profile}/${name}.md`, md + "\n");
  console.error(`${md}\n\nbench: wrote ${opts.profile}/${name}.cpuprofile and .md\n`);
}

console.error(`bench: ${N} records of ${SIZE} B, acks=all, ${ROUNDS} interleaved rounds, broker ${brokers}`);
const topic = `bench-${Date.now().toString(36)}`;
await createTopics([{ name: topic, partitions: 3 }]).catch((e) => {
  console.error(
    `bench: cannot reach Kafka at ${brokers} (${e.message}); start it with scripts/kafka.sh start`,
  );
  Deno.exit(1);
});
// With --profile, both bridges run with --inspect (the profiler attaches only for the extra runs).
const inspect = opts.profile ? [`127.0.0.1:${freePort()}`, `127.0.0.1:${freePort()}`] : [];
const bridge = await BridgeProcess.start({ env: { EDGE_BRIDGE_LOG_LEVEL: "info" }, inspect: inspect[0] });
const one = [await bridge.connect()];
const four = [one[0], await bridge.connect(), await bridge.connect(), await bridge.connect()];
// The same bridge as a (lone) HA live: every produce batch is a Kafka transaction, for fencing.
const haDir = await Deno.makeTempDir();
const haBridge = await BridgeProcess.start({
  env: { EDGE_BRIDGE_LOG_LEVEL: "info" },
  set: ["ha.mode=file-lock", `ha.fileLock.dir=${haDir}`, `ha.pairId=bench-${Date.now()}`],
  inspect: inspect[1],
});
while (!(await (await fetch(`${haBridge.httpUrl}/readyz`)).json()).ready) {
  await new Promise((r) => setTimeout(r, 50));
}
const haFour = await Promise.all([1, 2, 3, 4].map(() => haBridge.connect()));
const times: Record<string, number[]> = {
  kcat: [],
  kafkajs: [],
  "kafkajs, same records (4 headers)": [],
  "bridge (1 client)": [],
  "bridge (4 clients)": [],
  "bridge HA, transactional (4 clients)": [],
  "bridge HA, exactly-once (4 clients, seq)": [],
};
const lat: number[] = [];

/**
 * CPU used per record by each process on the machine's two cores: the bench process (the
 * kafkajs producer, or the bridge's WebSocket clients), the bridge, and the local broker.
 * This says where the time goes when the bridge is slower than kafkajs.
 */
const brokerPid = (() => {
  try {
    return Number(Deno.readTextFileSync(`${ROOT}.kafka/${brokers.split(":").pop()}/broker.pid`).trim());
  } catch {
    return undefined; // a remote cluster: its CPU is not ours to read
  }
})();
const cpu: Record<string, { bench: number[]; bridge: number[]; broker: number[] }> = {};
async function measured(
  name: string,
  bridgePid: number | undefined,
  run: () => Promise<number>,
): Promise<number> {
  const read = () => ({
    bench: cpuSeconds("self"),
    bridge: bridgePid ? cpuSeconds(bridgePid) : 0,
    broker: brokerPid ? cpuSeconds(brokerPid) : 0,
  });
  const before = read();
  const ms = await run();
  const after = read();
  const c = cpu[name] ??= { bench: [], bridge: [], broker: [] };
  for (const k of ["bench", "bridge", "broker"] as const) c[k].push(((after[k] - before[k]) * 1e6) / N);
  times[name].push(ms);
  return ms;
}

try {
  await bridgeRun(topic, one); // warm-up: connections, metadata, JIT
  for (let r = 1; r <= ROUNDS; r++) {
    times.kcat.push(await kcatRun(topic));
    await measured("kafkajs", undefined, () => kafkajsRun(topic, false));
    await measured("kafkajs, same records (4 headers)", undefined, () => kafkajsRun(topic, true));
    await measured("bridge (1 client)", bridge.pid, async () => {
      const b1 = await bridgeRun(topic, one);
      lat.push(...b1.latencies);
      return b1.ms;
    });
    await measured("bridge (4 clients)", bridge.pid, async () => (await bridgeRun(topic, four)).ms);
    await measured(
      "bridge HA, transactional (4 clients)",
      haBridge.pid,
      async () => (await bridgeRun(topic, haFour)).ms,
    );
    await measured(
      "bridge HA, exactly-once (4 clients, seq)",
      haBridge.pid,
      async () => (await bridgeRun(topic, haFour, true)).ms,
    );
    console.error(`bench: round ${r}/${ROUNDS} done`);
  }
  if (opts.profile) {
    await profiledRun("bridge-4clients", inspect[0], four);
    await profiledRun("bridge-ha-4clients", inspect[1], haFour);
  }
} finally {
  await Promise.all([...four, ...haFour].map((c) => c.close()));
  await bridge.stop();
  await haBridge.stop();
  await Deno.remove(haDir, { recursive: true });
}

const rate = (name: string) => N / (median(times[name]) / 1000);
const SAME = "kafkajs, same records (4 headers)";
const ratio = (name: string, base: string) => (rate(name) / rate(base)).toFixed(2);
const rows = Object.keys(times).map((name) =>
  `| ${name} | ${Math.round(rate(name)).toLocaleString("en")} | ${ratio(name, "kafkajs")} | ${
    ratio(name, SAME)
  } | ${ratio(name, "kcat")} |`
);
const table = [
  `Publish ${N} records of ${SIZE} B with acks=all, all confirmed; median of ${ROUNDS} interleaved rounds.`,
  "",
  "| path | records/s | vs kafkajs | vs kafkajs, same records | vs kcat |",
  "|---|---|---|---|---|",
  ...rows,
  "",
  `Exactly-once publishing (seq, and the dedupe log written in each transaction) runs at ${
    ratio("bridge HA, exactly-once (4 clients, seq)", "bridge HA, transactional (4 clients)")
  }x the HA bridge's throughput without it.`,
  "",
  "CPU per record, µs (median of rounds; the bench process runs the kafkajs producer or the bridge's clients):",
  "",
  "| path | bench process | bridge | broker | total |",
  "|---|---|---|---|---|",
  ...Object.entries(cpu).map(([name, c]) => {
    const [b, br, k] = [median(c.bench), median(c.bridge), median(c.broker)];
    return `| ${name} | ${b.toFixed(1)} | ${br.toFixed(1)} | ${brokerPid ? k.toFixed(1) : "n/a"} | ${
      (b + br + k).toFixed(1)
    } |`;
  }),
  "",
  `Bridge publish-to-ack latency (1 client, window ${WINDOW}): p50 ${
    percentile(lat, 0.5).toFixed(1)
  } ms, p99 ${percentile(lat, 0.99).toFixed(1)} ms.`,
].join("\n");
console.log(table);
if (opts.out) {
  const doc =
    `# Benchmarks\n\nMeasured by \`deno task bench\` (scripts/bench.ts) on ${
      new Date().toISOString().slice(0, 10)
    }, ` +
    `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} cores, one local Kafka broker.\n` +
    `kafkajs sends windows of ${WINDOW} records through an idempotent producer; kcat (librdkafka) is the ceiling; ` +
    `the bridge clients keep ${WINDOW} publishes in flight each.\n\n${table}\n`;
  await Deno.writeTextFile(opts.out, doc);
  console.error(`bench: wrote ${opts.out}`);
}
