/**
 * Failover time per HA mode: kill -9 the live N times and time until the other
 * node serves (/readyz 200), with default HA timings. Prints p50, p99 and max.
 *
 *   deno task bench:failover [--rounds N] [--out FILE]
 *
 * Needs a broker: KAFKA_BROKERS, or the dev broker (scripts/kafka.sh start).
 */
import { parseArgs } from "node:util";
import { HaCluster } from "../tests/helpers/ha.ts";
import { percentile } from "./stats.ts";

const { values: opts } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log("Usage: deno task bench:failover [--rounds N] [--out FILE]");
  Deno.exit(0);
}
const ROUNDS = Number(opts.rounds);
Deno.env.set("KAFKA_BROKERS", Deno.env.get("KAFKA_BROKERS") ?? "127.0.0.1:19092");

const rows: string[] = [];
for (const mode of ["heartbeat", "file-lock"] as const) {
  // Default timings, except the test helpers' short hold-down (no failback here anyway).
  const ha = new HaCluster(mode, [{ name: "a", priority: 100 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ]);
  const times: number[] = [];
  try {
    await ha.start("a");
    await ha.waitRole("a", "live");
    await ha.start("b");
    await ha.waitRole("b", "backup");
    let live = "a", backup = "b";
    for (let i = 1; i <= ROUNDS; i++) {
      await new Promise((r) => setTimeout(r, 300 + Math.random() * 500)); // land at a random point of the beat
      const t0 = performance.now();
      await ha.stop(live, "SIGKILL");
      await ha.waitRole(backup, "live");
      times.push(performance.now() - t0);
      console.error(`bench:failover ${mode} round ${i}/${ROUNDS}: ${times.at(-1)!.toFixed(0)} ms`);
      await ha.start(live);
      await ha.waitRole(live, "backup");
      [live, backup] = [backup, live];
    }
  } finally {
    await ha.close();
  }
  rows.push(
    `| ${mode} | ${ROUNDS} | ${percentile(times, 0.5).toFixed(0)} | ${percentile(times, 0.99).toFixed(0)} | ${
      Math.max(...times).toFixed(0)
    } |`,
  );
}
const table = [
  "Failover: kill -9 of the live until the backup answers /readyz 200, default HA timings.",
  "",
  "| mode | rounds | p50 ms | p99 ms | max ms |",
  "|---|---|---|---|---|",
  ...rows,
].join("\n");
console.log(table);
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
