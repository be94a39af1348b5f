import assert from "node:assert/strict";
import { sleep } from "./sleep.ts";

Deno.test("sleep: waits, and an abort cuts it short without leaking the timer", async () => {
  let t = performance.now();
  await sleep(30);
  assert.ok(performance.now() - t >= 25);
  const stop = new AbortController();
  t = performance.now();
  const waiting = sleep(10_000, stop.signal);
  stop.abort();
  await waiting;
  assert.ok(performance.now() - t < 1000);
});
