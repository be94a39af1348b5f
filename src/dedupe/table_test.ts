import assert from "node:assert/strict";
import { DedupeTable, type WrittenAt } from "./table.ts";

const at = (offset: number, epoch = 1): WrittenAt => ({ topic: "t", partition: 0, offset, epoch });
const limits = { maxClients: 3, windowPerClient: 4, clientTtlMs: 1_000 };

Deno.test("dedupe table: a written seq is found with its position; an unwritten one is new", () => {
  const t = new DedupeTable(limits);
  assert.deepEqual(t.lookup("a", 1, undefined, 0), { kind: "new" });
  t.written("a", 1, at(10), 0);
  assert.deepEqual(t.lookup("a", 1, undefined, 1), { kind: "written", at: at(10) });
  assert.deepEqual(t.lookup("a", 2, undefined, 1), { kind: "new" });
  // A gap (seq 2 refused, never written) stays new, also after later seqs were written.
  t.written("a", 3, at(11), 1);
  assert.deepEqual(t.lookup("a", 2, undefined, 2), { kind: "new" });
});

Deno.test("dedupe table: acked frees positions; a resend below the floor is unverifiable", () => {
  const t = new DedupeTable(limits);
  t.lookup("a", 1, undefined, 0);
  for (let s = 1; s <= 3; s++) t.written("a", s, at(s), 0);
  assert.equal(t.lookup("a", 4, 2, 0).kind, "new");
  assert.deepEqual([...t.window("a")!.written.keys()], [3]);
  assert.deepEqual(t.lookup("a", 2, 2, 0), { kind: "unverifiable", reason: "below_window" });
  assert.equal(t.window("a")!.floor, 2);
});

Deno.test("dedupe table: a client unknown past seq 1 is unverifiable once, then tracked", () => {
  const t = new DedupeTable(limits);
  assert.deepEqual(t.lookup("a", 7, 5, 0), { kind: "unverifiable", reason: "forgotten" });
  assert.equal(t.window("a")!.floor, 6);
  assert.deepEqual(t.lookup("a", 8, 5, 0), { kind: "new" });
  // A fresh client's pipelined seqs are new, not unverifiable.
  assert.deepEqual(t.lookup("b", 1, undefined, 0), { kind: "new" });
  assert.deepEqual(t.lookup("b", 2, undefined, 0), { kind: "new" });
});

Deno.test("dedupe table: the per-client window drops the positions recorded longest ago", () => {
  const t = new DedupeTable(limits); // windowPerClient 4
  t.lookup("a", 1, undefined, 0);
  for (let s = 2; s <= 6; s++) t.written("a", s, at(s), 0); // seq 1 is still in flight
  assert.deepEqual([...t.window("a")!.written.keys()], [3, 4, 5, 6]);
  assert.equal(t.window("a")!.floor, 0, "the client's floor is its own");
  // Review finding: seq 1's late answer is kept (it is the newest recorded), so its resend is
  // answered from the table instead of being written again.
  t.written("a", 1, at(1), 0);
  assert.deepEqual(t.lookup("a", 1, undefined, 0), { kind: "written", at: at(1) });
  // What was dropped (seq 2, then 3) cannot be told from a seq never written: at-least-once.
  assert.deepEqual(t.lookup("a", 2, undefined, 0), { kind: "unverifiable", reason: "below_window" });
  assert.equal(t.entries, 4);
});

Deno.test("dedupe table: clients expire after the TTL and beyond maxClients, least recent first", () => {
  const t = new DedupeTable(limits);
  for (const [i, c] of ["a", "b", "c"].entries()) t.written(c, 1, at(i), i * 100);
  t.lookup("a", 2, undefined, 300); // a is now the most recent
  t.written("d", 1, at(9), 400); // over maxClients: b (least recent) goes
  assert.equal(t.window("b"), undefined);
  assert.equal(t.clients, 3);
  assert.equal(t.expire(1_250), 1); // c, last seen at 200
  assert.equal(t.window("c"), undefined);
  // An expired client is unknown even before expire() runs.
  assert.deepEqual(t.lookup("a", 3, 2, 5_000), { kind: "unverifiable", reason: "forgotten" });
});

Deno.test("dedupe table: merge is monotonic, so old or repeated log records change nothing", () => {
  const t = new DedupeTable(limits);
  const newer = { floor: 2, high: 4, written: new Map([[3, at(3)], [4, at(4)]]) };
  const older = { floor: 0, high: 2, written: new Map([[1, at(1)], [2, at(2)]]) };
  t.merge("a", newer, 0);
  t.merge("a", older, 0);
  t.merge("a", newer, 0);
  const w = t.window("a")!;
  assert.equal(w.floor, 2);
  assert.equal(w.high, 4);
  assert.deepEqual([...w.written.keys()].sort(), [3, 4]);
});

Deno.test("dedupe table: deltas become retirable once the floor passes their highest seq", () => {
  const t = new DedupeTable(limits);
  t.lookup("a", 1, undefined, 0);
  t.deltaWritten("a", "d/a/x.1", 2, 0);
  t.deltaWritten("a", "d/a/x.2", 4, 0);
  assert.deepEqual(t.takeRetirable("a"), []);
  t.lookup("a", 5, 3, 0); // acked 3: the first delta (up to 2) is below the floor
  assert.deepEqual(t.takeRetirable("a"), ["d/a/x.1"]);
  assert.deepEqual(t.takeRetirable("a"), [], "taken once");
  t.deltaRetired("a", "d/a/x.2"); // another node retired it
  t.lookup("a", 6, 5, 0);
  assert.deepEqual(t.takeRetirable("a"), []);
  assert.deepEqual(t.takeRetirable("nobody"), []);
});
