/**
 * Failover time per HA mode: kill -9 the live N times, with default HA timings, and time
 *  - until the other node serves (/readyz 200), and
 *  - until an SDK producer (EdgeBridgeClient with both URLs, publishing steadily) gets its
 *    first ack from the new live: the failover as a client sees it.
 * Prints p50, p99 and max of each. Options: see HELP below (--help prints it).
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).
 */
import { parseArgs } from "node:util";
import { EdgeBridgeClient } from "../src/client/mod.ts";
import { HaCluster } from "../tests/helpers/ha.ts";
import { createTopics, uniqueTopic } from "../tests/helpers/kafka.ts";
import { until } from "../tests/helpers/wait.ts";
import { percentile } from "./stats.ts";

const USAGE = "Usage: deno task bench:failover [--rounds N] [--interval MS] [--warmup S] [--out FILE]";
const HELP = `${USAGE}

Kills the live of a live/backup pair (heartbeat mode, then file-lock mode) with kill -9, N times,
and reports p50/p99/max of: kill -> the other node answers /readyz 200, and kill -> the first ack
an SDK producer (EdgeBridgeClient, both URLs) gets from the new live.

  --rounds N     kills measured per mode (default 10)
  --interval MS  the producer publishes one 100-byte record every MS ms (default 5)
  --warmup S     seconds of publishing, then one unmeasured failover, before each mode's rounds:
                 a broker started seconds before is slow for ~10 s (default 10; 0: none)
  --out FILE     also append the table to FILE (e.g. docs/benchmarks.md)

Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).`;
const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    interval: { type: "string", default: "5" },
    warmup: { type: "string", default: "10" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(HELP);
  Deno.exit(0);
}
function positive(name: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) {
    console.error(`bench:failover: --${name} must be a number from ${min}, got "${text}"\n${USAGE}`);
    Deno.exit(2);
  }
  return n;
}
const ROUNDS = Math.floor(positive("rounds", opts.rounds, 1));
const INTERVAL_MS = positive("interval", opts.interval, 1);
const WARMUP_S = positive("warmup", opts.warmup, 0);
Deno.env.set("KAFKA_BROKERS", Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Publishes one record every INTERVAL_MS ms and notes when each ack came, and from which node. */
class Producer {
  readonly acks: { at: number; node?: string; duplicate: boolean }[] = [];
  failed = 0;
  #stop = false;
  #loop?: Promise<void>;
  constructor(readonly client: EdgeBridgeClient, readonly topic: string) {}

  start(): void {
    this.#loop = (async () => {
      const value = "x".repeat(100);
      while (!this.#stop) {
        this.client.publish(this.topic, value).then(
          // The ack resolves while the link that carried it is the current one: its node acked it.
          (ack) =>
            this.acks.push({ at: performance.now(), node: this.client.state.node, duplicate: ack.duplicate }),
          () => this.failed++,
        );
        await sleep(INTERVAL_MS);
      }
    })();
  }

  /** When the first ack from `node` came after `since`, if one has. */
  firstAckFrom(node: string, since: number): number | undefined {
    let i = this.acks.length; // acks are in time order: walk back to the first at or after `since`
    while (i > 0 && this.acks[i - 1].at >= since) i--;
    for (; i < this.acks.length; i++) if (this.acks[i].node === node) return this.acks[i].at;
    return undefined;
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#loop;
    await this.client.close();
  }
}

/** kill -9 of the live, until /readyz says the other is live and until the producer's first ack from it. */
async function failover(ha: HaCluster, producer: Producer, live: string, backup: string) {
  await sleep(300 + Math.random() * 500); // land at a random point of the beat
  const t0 = performance.now();
  await ha.stop(live, "SIGKILL");
  await ha.waitRole(backup, "live");
  const readyMs = performance.now() - t0;
  let ackAt: number | undefined;
  await until(
    `the producer's first ack from ${backup}`,
    () => (ackAt = producer.firstAckFrom(backup, t0)) !== undefined,
    30_000,
  );
  await ha.start(live);
  await ha.waitRole(live, "backup");
  return { readyMs, ackMs: ackAt! - t0 };
}

const stats = (xs: number[]) =>
  `${percentile(xs, 0.5).toFixed(0)} | ${percentile(xs, 0.99).toFixed(0)} | ${Math.max(...xs).toFixed(0)}`;

const rows: string[] = [];
const notes: string[] = [];
for (const mode of ["heartbeat", "file-lock"] as const) {
  // Default timings, except the test helpers' short hold-down (no failback here anyway).
  const ha = new HaCluster(mode, [{ name: "a", priority: 100 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ]);
  const topic = uniqueTopic(`bench-failover-${mode}`);
  await createTopics([{ name: topic, partitions: 3 }]);
  const ready: number[] = [], acked: number[] = [];
  let producer: Producer | undefined;
  try {
    await ha.start("a");
    await ha.waitRole("a", "live");
    await ha.start("b");
    await ha.waitRole("b", "backup");
    producer = new Producer(new EdgeBridgeClient({ urls: [ha.url("a"), ha.url("b")] }), topic);
    producer.start();
    let live = "a", backup = "b";
    if (WARMUP_S > 0) {
      await sleep(WARMUP_S * 1000);
      const w = await failover(ha, producer, live, backup);
      console.error(
        `bench:failover ${mode} warm-up: /readyz ${w.readyMs.toFixed(0)} ms, first ack ${
          w.ackMs.toFixed(0)
        } ms`,
      );
      [live, backup] = [backup, live];
    }
    for (let i = 1; i <= ROUNDS; i++) {
      const r = await failover(ha, producer, live, backup);
      ready.push(r.readyMs);
      acked.push(r.ackMs);
      console.error(
        `bench:failover ${mode} round ${i}/${ROUNDS}: /readyz ${r.readyMs.toFixed(0)} ms, ` +
          `first SDK ack ${r.ackMs.toFixed(0)} ms`,
      );
      [live, backup] = [backup, live];
    }
  } finally {
    await producer?.stop();
    await ha.close();
  }
  rows.push(`| ${mode} | ${ROUNDS} | ${stats(ready)} | ${stats(acked)} |`);
  notes.push(
    `${mode}: the producer had ${producer!.acks.length} acks (${
      producer!.acks.filter((a) => a.duplicate).length
    } marked duplicate), ${producer!.failed} failed publishes`,
  );
}
const table = [
  `Failover: kill -9 of the live, default HA timings, an SDK producer publishing every ${INTERVAL_MS} ms` +
  (WARMUP_S > 0 ? ` (after ${WARMUP_S} s of warm-up and one unmeasured failover).` : " (no warm-up)."),
  "/readyz: until the other node answers /readyz 200. First SDK ack: until the producer's first ack from it.",
  "",
  "| mode | rounds | /readyz p50 ms | p99 ms | max ms | first SDK ack p50 ms | p99 ms | max ms |",
  "|---|---|---|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(table);
console.log(`\n${notes.join("\n")}`);
if (opts.out) {
  await Deno.writeTextFile(
    opts.out,
    `\n## Failover\n\nMeasured by \`deno task bench:failover\` on ${
      new Date().toISOString().slice(0, 10)
    }.\n\n${table}\n`,
    { append: true },
  );
  console.error(`bench:failover: appended to ${opts.out}`);
}
