import assert from "node:assert/strict";
import { settlesWithin } from "./deadline.ts";

Deno.test("settlesWithin: true when the promise settles first, fulfilled or rejected", async () => {
  assert.equal(await settlesWithin(Promise.resolve(1), 1_000), true);
  assert.equal(await settlesWithin(Promise.reject(new Error("no")), 1_000), true);
});

Deno.test("settlesWithin: false when the time runs out first (and a negative time is no time)", async () => {
  const never = new Promise(() => {});
  assert.equal(await settlesWithin(never, 5), false);
  assert.equal(await settlesWithin(never, -10), false);
});
