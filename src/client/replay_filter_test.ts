import assert from "node:assert/strict";
import { DeliveredPositions, resumeFrom } from "./replay_filter.ts";

Deno.test("DeliveredPositions: drops positions at or below the last delivered, per partition", () => {
  const p = new DeliveredPositions();
  assert.equal(p.accept(0, "5"), true);
  assert.equal(p.accept(0, "7"), true); // gaps are fine (transaction markers)
  assert.equal(p.accept(1, "0"), true);
  assert.equal(p.accept(0, "7"), false);
  assert.equal(p.accept(0, "6"), false);
  assert.equal(p.accept(0, "5"), false);
  assert.equal(p.accept(1, "0"), false);
  assert.equal(p.accept(0, "8"), true);
  assert.equal(p.accept(2, "9223372036854775806"), true);
  assert.equal(p.accept(2, "9223372036854775806"), false);
  assert.deepEqual([...p.next], [[0, 9n], [1, 1n], [2, 9223372036854775807n]]);
});

Deno.test("DeliveredPositions: a skipped range moves the position forward, never back", () => {
  const p = new DeliveredPositions();
  p.accept(0, "2");
  p.skip(0, "10");
  assert.equal(p.next.get(0), 10n);
  p.skip(0, "4");
  assert.equal(p.next.get(0), 10n);
  assert.equal(p.accept(0, "9"), false);
  assert.equal(p.accept(0, "10"), true);
});

Deno.test("resumeFrom: start positions moved past what was delivered", () => {
  const p = new DeliveredPositions();
  p.accept(0, "3");
  p.accept(0, "4");
  p.accept(2, "100");
  const from = resumeFrom("earliest", { "0": "0", "1": "7", "2": "100" }, p.next);
  assert.deepEqual(from, { offsets: { "0": "5", "1": "7", "2": "101" } });
});

Deno.test("resumeFrom: a start later than anything delivered wins", () => {
  const p = new DeliveredPositions();
  p.accept(0, "3");
  assert.deepEqual(resumeFrom("latest", { "0": "50" }, p.next), { offsets: { "0": "50" } });
});

Deno.test("resumeFrom: without start, the offsets seen; with nothing seen, the original from", () => {
  const p = new DeliveredPositions();
  assert.equal(resumeFrom("earliest", undefined, p.next), "earliest");
  assert.deepEqual(resumeFrom({ timestamp: 5 }, undefined, p.next), { timestamp: 5 });
  p.accept(1, "9");
  assert.deepEqual(resumeFrom("earliest", undefined, p.next), { offsets: { "1": "10" } });
  assert.deepEqual(resumeFrom("latest", {}, p.next), { offsets: { "1": "10" } });
});
