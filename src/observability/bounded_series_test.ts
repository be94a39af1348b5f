import assert from "node:assert/strict";
import { BoundedSeries } from "./bounded_series.ts";

function fakeGauge() {
  const series = new Map<string, number>();
  const key = (l: Record<string, string | number>) => JSON.stringify(Object.entries(l).sort());
  return {
    series,
    set: (l: Record<string, string | number>, v: number) => void series.set(key(l), v),
    remove: (l: Record<string, string | number>) => void series.delete(key(l)),
  };
}

Deno.test("bounded series: at most max label sets; more are dropped and counted", () => {
  const g = fakeGauge();
  let dropped = 0;
  const b = new BoundedSeries(g, 3, () => dropped++);
  const h = b.holder();
  for (let i = 0; i < 10; i++) h.set({ group: `g${i}`, partition: 0 }, i);
  assert.equal(g.series.size, 3);
  assert.equal(dropped, 7);
  h.set({ group: "g0", partition: 0 }, 42); // an existing series still updates
  assert.equal(g.series.get(JSON.stringify([["group", "g0"], ["partition", 0]])), 42);
});

Deno.test("bounded series: a series is removed when its last holder releases it", () => {
  const g = fakeGauge();
  const b = new BoundedSeries(g, 10);
  const a = b.holder(), c = b.holder();
  a.set({ group: "shared", partition: 1 }, 5);
  c.set({ group: "shared", partition: 1 }, 6);
  a.set({ group: "own", partition: 1 }, 1);
  a.release();
  assert.equal(g.series.size, 1, "the shared one stays while c holds it");
  c.release();
  assert.equal(g.series.size, 0);
  assert.equal(b.size, 0);
  // Room freed for new groups.
  const d = b.holder();
  for (let i = 0; i < 10; i++) d.set({ group: `n${i}` }, 0);
  assert.equal(g.series.size, 10);
});
