import assert from "node:assert/strict";
import type { OutgoingRecord, PartitionBatch } from "../kafka/types.ts";
import { DedupeLedger } from "./ledger.ts";
import { DedupeTable } from "./table.ts";

const limits = { maxClients: 100, windowPerClient: 100, clientTtlMs: 60_000 };
const rec = (clientId: string, seq: number): OutgoingRecord => ({
  topic: "t",
  value: new Uint8Array(1),
  headers: {},
  sequence: { clientId, seq },
});

function memoryLedger() {
  return new DedupeLedger(new DedupeTable(limits), { node: "n1", rebuildTimeoutMs: 1_000, epoch: () => 0 });
}

Deno.test("dedupe ledger: a resend is answered from the table; one still in flight is refused", () => {
  const l = memoryLedger();
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "write" });
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "in_flight" });
  l.fate(rec("a", 1), { topic: "t", partition: 2, offset: "40" });
  assert.deepEqual(l.decide("a", 1, undefined), {
    kind: "written",
    at: { topic: "t", partition: 2, offset: 40, epoch: 0 },
  });
});

Deno.test("dedupe ledger: a publish not written (or abandoned) can be written again", () => {
  const l = memoryLedger();
  l.decide("a", 1, undefined);
  l.fate(rec("a", 1), "not_written");
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "write" });
  l.abandon("a", 1);
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "write" });
});

Deno.test("dedupe ledger: memory only, an unknown outcome is written again (at-least-once)", () => {
  const l = memoryLedger();
  l.decide("a", 1, undefined);
  l.fate(rec("a", 1), "unknown");
  assert.equal(l.rebuilding, false);
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "write" });
});

/** A Kafka log for the HA ledger: what produce() writes, the follower hands back by apply(). */
function haLedger(node = "n1") {
  const log: OutgoingRecord[] = [];
  const slow: number[] = [];
  const l = new DedupeLedger(new DedupeTable(limits), {
    node,
    logTopic: "log",
    rebuildTimeoutMs: 20,
    epoch: () => 7,
    onSlowRebuild: (ms) => slow.push(ms),
  });
  const produce = (batches: PartitionBatch[]) => {
    for (const b of batches) log.push(...b.records);
    return Promise.resolve(batches.map(() => "0"));
  };
  return { l, log, produce, slow };
}

Deno.test("dedupe ledger (HA): activation writes a barrier; sequenced publishes wait for its read-back", async () => {
  const { l, log, produce } = haLedger();
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "rebuilding" });
  await l.afterActivation(produce); // returns once the barrier is written, not read
  assert.equal(log.length, 1, "the barrier is written");
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "rebuilding" }, "not before it is read back");
  l.apply(log[0].key!, log[0].value);
  assert.deepEqual(l.decide("a", 1, undefined), { kind: "write" });
  l.fate(rec("a", 1), "unknown");
  assert.equal(l.rebuilding, true);
  assert.deepEqual(l.decide("a", 2, undefined), { kind: "rebuilding" });
  l.apply(log[0].key!, log[0].value);
  assert.equal(l.rebuilding, true, "a barrier from before the unknown outcome proves nothing");
  l.close();
});

Deno.test("dedupe ledger (HA): a barrier not read back is reported, and waited for, not given up", async () => {
  const { l, log, produce, slow } = haLedger();
  await l.afterActivation(produce);
  await new Promise((r) => setTimeout(r, 70));
  assert.ok(slow.length >= 2, `reported while waiting (${slow.length})`);
  assert.equal(l.rebuilding, true);
  l.apply(log[0].key!, log[0].value);
  assert.equal(l.rebuilding, false, "read back late: serves then");
  const reported = slow.length;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(slow.length, reported, "no more reports once read back");
  // A peer's barrier, or one from an earlier activation, is not this one.
  await l.afterActivation(produce);
  l.apply(log[0].key!, log[0].value);
  assert.equal(l.rebuilding, true);
  l.close();
});

Deno.test("dedupe ledger (HA): a publish still queued across a re-activation stays in flight", async () => {
  // Review finding: a write decided before a re-activation may still be queued in the sink;
  // its resend must not be written too once the barrier is read.
  const { l, log, produce } = haLedger();
  await l.afterActivation(produce);
  l.apply(log[0].key!, log[0].value);
  assert.deepEqual(l.decide("c", 7, undefined), { kind: "write" });
  await l.afterActivation(produce); // reinit: the sink keeps seq 7 queued
  l.apply(log[1].key!, log[1].value);
  assert.deepEqual(l.decide("c", 7, undefined), { kind: "in_flight" });
  l.fate(rec("c", 7), { topic: "t", partition: 0, offset: "3" });
  assert.equal(l.decide("c", 7, undefined).kind, "written");
  l.close();
});

Deno.test("dedupe ledger (HA): what one node wrote, the next one learns from the log", async () => {
  const a = haLedger("a");
  const apply = (l: DedupeLedger, records: OutgoingRecord[]) =>
    records.forEach((r) => l.apply(r.key!, r.tombstone ? null : r.value));
  await a.l.afterActivation(a.produce);
  apply(a.l, a.log);
  a.l.decide("c", 1, undefined);
  a.l.decide("c", 2, undefined);
  // One transaction: records at offsets 10 and 11 of t/0; its companion writes the window.
  const batch: PartitionBatch = { topic: "t", partition: 0, records: [rec("c", 1), rec("c", 2)] };
  const extra = a.l.companion([batch], ["10"]);
  assert.equal(extra.length, 1);
  a.log.push(...extra[0].records);
  // Node b follows the same log, then takes over.
  const b = haLedger("b");
  apply(b.l, a.log);
  await b.l.afterActivation(b.produce);
  apply(b.l, b.log);
  assert.deepEqual(b.l.decide("c", 2, 0), {
    kind: "written",
    at: { topic: "t", partition: 0, offset: 11, epoch: 7 },
  });
  assert.deepEqual(b.l.decide("c", 3, 2), { kind: "write" });
  // b's next transaction retires a's delta (wholly at or below the floor, 2) and adds its own.
  const next = b.l.companion([{ topic: "t", partition: 0, records: [rec("c", 3)] }], ["12"])[0].records;
  const keyOf = (r: OutgoingRecord) => new TextDecoder().decode(r.key!);
  assert.deepEqual(next.map((r) => [keyOf(r).split("/")[1], r.tombstone ?? false]), [["c", true], [
    "c",
    false,
  ]]);
  assert.equal(keyOf(next[0]), keyOf(extra[0].records[0]), "the tombstone names a's delta");
  // Records without a sequence add nothing to a transaction.
  assert.deepEqual(
    a.l.companion([{ topic: "t", partition: 0, records: [{ ...rec("c", 9), sequence: undefined }] }], ["1"]),
    [],
  );
  a.l.close();
  b.l.close();
});

Deno.test("dedupe ledger: a delta read back is as recent as its write; one older than the TTL is skipped", () => {
  let now = 100_000;
  const table = new DedupeTable({ ...limits, clientTtlMs: 10_000 });
  const l = new DedupeLedger(table, {
    node: "n",
    logTopic: "log",
    rebuildTimeoutMs: 100,
    epoch: () => 1,
    now: () => now,
  });
  const delta = (clientId: string) => {
    const src = new DedupeLedger(new DedupeTable(limits), {
      node: "m",
      logTopic: "log",
      rebuildTimeoutMs: 100,
      epoch: () => 1,
    });
    return src.companion([{ topic: "t", partition: 0, records: [rec(clientId, 1)] }], ["5"])[0].records[0];
  };
  const old = delta("old"), recent = delta("recent");
  l.apply(old.key!, old.value, now - 20_000);
  l.apply(recent.key!, recent.value, now - 5_000);
  assert.equal(table.window("old"), undefined, "older than the TTL: not kept");
  assert.ok(table.window("recent"));
  now += 6_000; // 11 s after the write
  assert.equal(table.expire(now), 1, "expires a TTL after its write, not after it was read");
});

Deno.test("dedupe ledger (HA): a current live holds its follower; going stale skips it past its own committed writes", async () => {
  const { l, log, produce } = haLedger();
  const skips: string[] = [];
  l.follower = { skipTo: (p, o) => (skips.push(`${p}@${o}`), Promise.resolve()) };
  assert.equal(l.hold(), undefined, "stale at start: the follower reads");
  await l.afterActivation(produce);
  l.apply(log[0].key!, log[0].value);
  const held = l.hold();
  assert.ok(held, "a live with a current table holds its follower");
  // A transaction committed: its companion records landed at 40 and 41 of the log.
  l.decide("c", 1, undefined);
  const extra = l.companion([{ topic: "t", partition: 0, records: [rec("c", 1)] }], ["9"]);
  l.companion.committed!(extra, ["40"]);
  l.fate(rec("c", 2), "unknown"); // the next transaction's outcome is unknown
  await held;
  assert.deepEqual(skips, ["0@41"], "read on from just after what is known committed");
  assert.equal(l.hold(), undefined, "stale: the follower reads");
  await l.afterActivation(produce);
  assert.deepEqual(skips, ["0@41"], "skipped once");
  l.close();
});

Deno.test("dedupe ledger (HA): a placeholder adds the log to a transaction with sequenced records only", () => {
  const { l } = haLedger();
  const plain = { topic: "t", partition: 0, records: [{ ...rec("c", 1), sequence: undefined }] };
  assert.equal(l.companion.placeholder!([plain]), undefined);
  const early = l.companion.placeholder!([plain, { topic: "t", partition: 1, records: [rec("c", 1)] }])!;
  assert.deepEqual([early.topic, early.partition, early.records.length, early.records[0].tombstone], [
    "log",
    0,
    1,
    true,
  ]);
  l.apply(early.records[0].key!, null); // read back by a follower: nothing happens, nothing is reported
  assert.equal(l.table.clients, 0);
  l.close();
});
