import assert from "node:assert/strict";
import type { Delivery } from "../kafka/types.ts";
import { HubRecord, PartitionWindow } from "./window.ts";

const enc = new TextEncoder();
function rec(offset: number, value = `v${offset}`): HubRecord {
  const d: Delivery = {
    topic: "t",
    partition: 0,
    offset: String(offset),
    timestamp: "1700000000000",
    key: enc.encode("k"),
    value: enc.encode(value),
    headers: { h: "1" },
  };
  return new HubRecord(d, "kafka.t");
}

Deno.test("window: records come back from a position, across gaps in offsets", () => {
  const w = new PartitionWindow(0, 10, { maxRecords: 100, maxBytes: 1 << 20 });
  for (const o of [10, 11, 14, 15, 20]) assert.ok(w.append(rec(o)));
  assert.equal(w.next, 21);
  assert.deepEqual(w.from(10, 10).map((r) => r.offset), [10, 11, 14, 15, 20]);
  assert.deepEqual(w.from(12, 10).map((r) => r.offset), [14, 15, 20], "a position inside a gap");
  assert.deepEqual(w.from(14, 2).map((r) => r.offset), [14, 15]);
  assert.deepEqual(w.from(21, 10), []);
  assert.equal(w.append(rec(15)), false, "a re-fetched record is not held twice");
});

Deno.test("window: bounded by count and by bytes; what falls out is no longer covered", () => {
  const w = new PartitionWindow(0, 0, { maxRecords: 3, maxBytes: 1 << 20 });
  for (let o = 0; o < 5; o++) w.append(rec(o));
  assert.equal(w.length, 3);
  assert.equal(w.low, 2);
  assert.equal(w.covers(1), false);
  assert.equal(w.covers(2), true);
  assert.deepEqual(w.from(0, 10).map((r) => r.offset), [2, 3, 4]);

  const b = new PartitionWindow(0, 0, { maxRecords: 1000, maxBytes: 5000 });
  for (let o = 0; o < 10; o++) b.append(rec(o, "x".repeat(1000)));
  assert.ok(b.bytes <= 5000);
  assert.ok(b.length >= 1);
  assert.equal(b.low, 10 - b.length);
});

Deno.test("hub record: one encoding per wire encoding, shared by subscribers; only sub differs", () => {
  const r = rec(7, "hello");
  const a = JSON.parse(r.frame(JSON.stringify("a"), "utf8"));
  const b = JSON.parse(r.frame(JSON.stringify('b"2'), "utf8"));
  const c = JSON.parse(r.frame(JSON.stringify("c"), "base64"));
  assert.deepEqual(a, {
    op: "message",
    sub: "a",
    topic: "kafka.t",
    partition: 0,
    offset: "7",
    timestamp: "1700000000000",
    key: "k",
    keyEncoding: "utf8",
    value: "hello",
    encoding: "utf8",
    headers: { h: "1" },
  });
  assert.equal(b.sub, 'b"2');
  assert.equal(c.value, btoa("hello"));
  assert.equal(c.encoding, "base64");
});
