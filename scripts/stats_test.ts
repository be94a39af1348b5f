import assert from "node:assert/strict";
import { median, percentile } from "./stats.ts";

Deno.test("stats: median and percentiles by nearest rank below, input left unsorted", () => {
  const xs = [5, 1, 4, 2, 3];
  assert.equal(median(xs), 3);
  assert.equal(median([4, 1, 3, 2]), 3);
  assert.equal(percentile(xs, 0), 1);
  assert.equal(percentile(xs, 0.99), 5);
  assert.equal(percentile(xs, 1), 5);
  assert.deepEqual(xs, [5, 1, 4, 2, 3]);
});
