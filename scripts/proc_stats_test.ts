import assert from "node:assert/strict";
import { cpuSeconds, rssBytes } from "./proc_stats.ts";

Deno.test("proc stats: this process's CPU time grows with work, and its memory is counted", () => {
  const before = cpuSeconds("self");
  const until = performance.now() + 120;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  assert.ok(cpuSeconds("self") - before >= 0.05, "120 ms of spinning shows as CPU time");
  assert.ok(rssBytes("self") > 10 * 1024 * 1024);
  assert.ok(cpuSeconds(Deno.pid) >= cpuSeconds("self") - 0.01);
});
