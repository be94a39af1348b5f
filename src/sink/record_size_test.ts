import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { BATCH_OVERHEAD_BYTES, recordSizeBound, utf8Length } from "./record_size.ts";

Deno.test("utf8Length agrees with the encoder, including surrogate pairs", () => {
  for (const s of ["", "abc", "é", "€uro", "😀", "a😀b€é", "\u07ff\u0800", "\ud800x", "x\udc00"]) {
    assert.equal(utf8Length(s), new TextEncoder().encode(s).byteLength, s);
  }
});

/**
 * The exact v2 record size, written out independently of the bound: zigzag varints at
 * their real widths (timestamp and offset deltas of 0 take one byte each).
 */
function exactRecordSize(
  key: Uint8Array | undefined,
  value: Uint8Array,
  headers: Record<string, string>,
): number {
  const varint = (n: number) => {
    let z = (n << 1) ^ (n >> 31), len = 1;
    while ((z >>>= 7) !== 0) len++;
    return len;
  };
  let body = 1 + 1 + 1; // attributes, timestamp delta 0, offset delta 0
  body += key ? varint(key.byteLength) + key.byteLength : varint(-1);
  body += varint(value.byteLength) + value.byteLength;
  const hs = Object.entries(headers);
  body += varint(hs.length);
  for (const [k, v] of hs) {
    const kb = Buffer.byteLength(k), vb = Buffer.byteLength(v);
    body += varint(kb) + kb + varint(vb) + vb;
  }
  return varint(body) + body;
}

Deno.test("recordSizeBound never under-counts, and over-counts by little", () => {
  const cases: { key?: Uint8Array; value: Uint8Array; headers: Record<string, string> }[] = [
    { value: new Uint8Array(0), headers: {} },
    { value: new Uint8Array(100), headers: { "eb-client-id": "c1", "eb-node": "n" } },
    { key: new Uint8Array(16), value: new Uint8Array(5000), headers: { "é": "€".repeat(300) } },
    { key: new Uint8Array(1), value: new Uint8Array(1_000_000), headers: { a: "b" } },
  ];
  for (const c of cases) {
    const r = { topic: "t", ...c };
    const exact = exactRecordSize(c.key, c.value, c.headers);
    const bound = recordSizeBound(r);
    assert.ok(bound >= exact, `bound ${bound} < exact ${exact}`);
    assert.ok(bound - exact <= 40 + 8 * Object.keys(c.headers).length, `bound ${bound} vs exact ${exact}`);
  }
  assert.equal(BATCH_OVERHEAD_BYTES, 61);
});
