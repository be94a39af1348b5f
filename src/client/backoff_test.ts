import assert from "node:assert/strict";
import { Backoff, backoffCeiling } from "./backoff.ts";

Deno.test("backoffCeiling doubles from initialMs and stops at maxMs", () => {
  assert.deepEqual(
    [0, 1, 2, 3, 4, 5, 6].map((a) => backoffCeiling(a, 100, 5000)),
    [100, 200, 400, 800, 1600, 3200, 5000],
  );
  assert.equal(backoffCeiling(10_000, 100, 5000), 5000);
});

Deno.test("Backoff: full jitter spans 0 to the ceiling, never beyond maxMs", () => {
  const low = new Backoff({ initialMs: 100, maxMs: 5000 }, () => 0);
  for (let i = 0; i < 50; i++) assert.equal(low.next(), 0);

  const high = new Backoff({ initialMs: 100, maxMs: 5000 }, () => 0.999999999);
  const delays = Array.from({ length: 12 }, () => high.next());
  assert.deepEqual(delays.slice(0, 7), [100, 200, 400, 800, 1600, 3200, 5000]);
  assert.ok(delays.every((d) => d <= 5000));

  const mid = new Backoff({ initialMs: 100, maxMs: 5000 }, () => 0.5);
  assert.deepEqual([mid.next(), mid.next(), mid.next()], [50, 100, 200]);
});

Deno.test("Backoff: random draws stay within [0, ceiling] for every attempt", () => {
  let x = 0.1234;
  const b = new Backoff({ initialMs: 7, maxMs: 300 }, () => (x = (x * 9301 + 0.49297) % 1));
  for (let attempt = 0; attempt < 200; attempt++) {
    const d = b.next();
    assert.ok(
      Number.isInteger(d) && d >= 0 && d <= backoffCeiling(attempt, 7, 300),
      `attempt ${attempt}: ${d}`,
    );
  }
});

Deno.test("Backoff: reset starts over from the smallest ceiling", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 5000 }, () => 0.999999);
  b.next();
  b.next();
  b.next();
  assert.equal(b.attempt, 3);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 100);
});

Deno.test("Backoff: refuses nonsense bounds with a clear error", () => {
  assert.throws(() => new Backoff({ initialMs: -1 }), /initialMs/);
  assert.throws(() => new Backoff({ initialMs: 100, maxMs: 50 }), /maxMs/);
});

Deno.test("Backoff: while nodes answer (a failover under way) delays stay under answeredMaxMs", () => {
  const b = new Backoff({ initialMs: 100, maxMs: 5000 }, () => 0.999999);
  assert.equal(b.answeredMaxMs, 250);
  assert.deepEqual([b.next(true), b.next(true), b.next(true), b.next(true), b.next(true)], [
    100,
    200,
    250,
    250,
    250,
  ]);
  assert.equal(b.next(false), 3200, "nothing answered: the full exponential ceiling again");
  assert.equal(b.attempt, 6);
  // Between the URLs of one round: a small jitter that does not grow the exponent.
  assert.equal(b.jitter(100), 100);
  assert.equal(b.attempt, 6);
  assert.equal(new Backoff({ initialMs: 10, maxMs: 200 }).answeredMaxMs, 200, "never above maxMs");
  assert.throws(
    () => new Backoff({ maxMs: 1000, answeredMaxMs: 2000 }),
    /answeredMaxMs must be a number from 0 to maxMs/,
  );
});
