import assert from "node:assert/strict";
import {
  barrierKey,
  decodeRecord,
  deltaKey,
  encodeBarrier,
  encodeLiveMark,
  encodeWindow,
  liveMarkKey,
  PLACEHOLDER_KEY,
} from "./codec.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("dedupe codec: a delta survives the round trip, grouped by partition and epoch", () => {
  const written = new Map([
    [5, { topic: "orders", partition: 1, offset: 100, epoch: 3 }],
    [6, { topic: "orders", partition: 1, offset: 102, epoch: 3 }],
    [7, { topic: "orders", partition: 0, offset: 7, epoch: 4 }],
  ]);
  const value = encodeWindow({ floor: 4, high: 7, written });
  assert.equal(JSON.parse(new TextDecoder().decode(value)).w.length, 2);
  const r = decodeRecord(enc(deltaKey("sensor/17", "ab12.1")), value);
  assert.equal(r.kind, "delta");
  if (r.kind !== "delta") return;
  assert.equal(r.clientId, "sensor/17", "a clientId may contain '/'");
  assert.equal(r.key, "d/sensor/17/ab12.1");
  assert.equal(r.window.floor, 4);
  assert.equal(r.window.high, 7);
  assert.deepEqual(r.window.written, written);
});

Deno.test("dedupe codec: a delta's tombstone names its client and key", () => {
  assert.deepEqual(decodeRecord(enc(deltaKey("c1", "x.2")), null), {
    kind: "retired",
    clientId: "c1",
    key: "d/c1/x.2",
  });
});

Deno.test("dedupe codec: barriers carry their node and nonce", () => {
  assert.deepEqual(decodeRecord(enc(barrierKey("edge-1")), encodeBarrier("n1")), {
    kind: "barrier",
    node: "edge-1",
    nonce: "n1",
  });
});

Deno.test("dedupe codec: anything else is unreadable, with a reason, never a throw", () => {
  const cases: [string | null, string | null][] = [
    ["x/1", "{}"],
    ["c/a", "{}"],
    ["d/noslash", '{"v":1,"f":0,"h":0,"w":[]}'],
    ["d/a/1", "not json"],
    ["d/a/1", '{"v":2,"f":0,"h":0,"w":[]}'],
    ["d/a/1", '{"v":1,"f":-1,"h":0,"w":[]}'],
    ["d/a/1", '{"v":1,"f":0,"h":0,"w":[["t",0]]}'],
    ["d/a/1", '{"v":1,"f":0,"h":0,"w":[["t",0,1,5]]}'],
    ["d/a/1", '{"v":1,"f":0,"h":0,"w":[["t",0,1,5,"9"]]}'],
    ["b/n", '{"nonce":1}'],
    ["b/n", null],
    [null, "{}"],
  ];
  for (const [k, v] of cases) {
    const r = decodeRecord(k === null ? null : enc(k), v === null ? null : enc(v));
    assert.equal(r.kind, "unreadable", `${k} ${v}`);
  }
  assert.equal(decodeRecord(enc("d/a/1"), new Uint8Array([0xff, 0xfe])).kind, "unreadable");
});

Deno.test("dedupe codec: the early placeholder is recognised and means nothing", () => {
  assert.deepEqual(decodeRecord(enc(PLACEHOLDER_KEY), null), { kind: "placeholder" });
});

Deno.test("dedupe codec: live marks carry their node, epoch and seq; a malformed one is unreadable", () => {
  assert.deepEqual(
    decodeRecord(enc(liveMarkKey("n-1")), encodeLiveMark(163_840_007, 12)),
    { kind: "live", node: "n-1", epoch: 163_840_007, seq: 12 },
  );
  for (const bad of ['{"live":-1,"seq":1}', '{"live":3}', '{"live":"3","seq":1}', "null"]) {
    assert.equal(decodeRecord(enc(liveMarkKey("n")), enc(bad)).kind, "unreadable", bad);
  }
});
