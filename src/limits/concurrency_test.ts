import assert from "node:assert/strict";
import { BoundedConcurrency, Busy } from "./concurrency.ts";

/** A piece of work that finishes when told to. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, work: async () => await opened };
}

Deno.test("bounded concurrency: N at once, the rest queue in order, beyond the queue Busy at once", async () => {
  const limit = new BoundedConcurrency(2, 2);
  const gates = [gate(), gate(), gate(), gate()];
  const order: number[] = [];
  const runs = gates.map((g, i) => limit.run(async () => (order.push(i), await g.work())));
  await Promise.resolve();
  assert.deepEqual([limit.running, limit.queued], [2, 2]);
  assert.deepEqual(order, [0, 1], "only two started");
  let ran = false;
  await assert.rejects(limit.run(() => Promise.resolve(void (ran = true))), Busy);
  assert.ok(!ran, "refused work never runs");
  gates[1].open();
  await runs[1];
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(order, [0, 1, 2], "the first queued took the freed slot");
  assert.deepEqual([limit.running, limit.queued], [2, 1]);
  for (const g of gates) g.open();
  await Promise.all(runs);
  assert.deepEqual(order, [0, 1, 2, 3]);
  assert.deepEqual([limit.running, limit.queued], [0, 0]);
});

Deno.test("bounded concurrency: a failing piece of work frees its slot", async () => {
  const limit = new BoundedConcurrency(1, 0);
  await assert.rejects(limit.run(() => Promise.reject(new Error("boom"))), /boom/);
  assert.equal(limit.running, 0);
  assert.equal(await limit.run(() => Promise.resolve(7)), 7);
  assert.throws(() => new BoundedConcurrency(0, 1), RangeError);
});
