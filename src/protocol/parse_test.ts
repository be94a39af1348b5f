import assert from "node:assert/strict";
import { ErrorCode, RETRYABLE } from "./codes.ts";
import { parseClientFrame } from "./parse.ts";
import { decodeKey, decodePayload, encodePayload } from "./payload.ts";

const limits = { maxCredit: 1000 };
const parse = (v: unknown) => parseClientFrame(typeof v === "string" ? v : JSON.stringify(v), limits);
function failsWith(v: unknown, code: ErrorCode, re?: RegExp) {
  const r = parse(v);
  assert.equal(r.ok, false, `expected ${code} for ${JSON.stringify(v)}`);
  if (!r.ok) {
    assert.equal(r.code, code, r.message);
    if (re) assert.match(r.message, re);
  }
  return r;
}

Deno.test("protocol: valid frames parse with defaults filled in", () => {
  const pub = parse({ op: "publish", id: "1", topic: "t", value: "hi" });
  assert.deepEqual(pub.ok && pub.frame, {
    op: "publish",
    id: "1",
    topic: "t",
    value: "hi",
    encoding: "utf8",
    key: undefined,
    keyEncoding: "utf8",
    headers: undefined,
    partition: undefined,
  });
  const sub = parse({
    op: "subscribe",
    id: "s",
    topic: "t",
    mode: "group",
    group: "g",
    from: { offsets: { "0": "5" } },
  });
  assert.ok(sub.ok && sub.frame.op === "subscribe");
  if (sub.ok && sub.frame.op === "subscribe") {
    assert.equal(sub.frame.sub, "s");
    assert.deepEqual(sub.frame.from, { kind: "offsets", offsets: { "0": "5" } });
    assert.equal(sub.frame.credit, 0);
  }
  const ts = parse({ op: "subscribe", id: "s", topic: "t", from: { timestamp: 1700000000000 }, credit: 10 });
  assert.ok(
    ts.ok && ts.frame.op === "subscribe" && ts.frame.from.kind === "timestamp" &&
      ts.frame.mode === "broadcast",
  );
  assert.ok(parse({ op: "publish", id: "1", topic: "t", value: { a: [1] }, encoding: "json" }).ok);
  assert.ok(parse({ op: "commit", id: "c", sub: "s", partition: 0, offset: "9223372036854775807" }).ok);
});

Deno.test("protocol: every bad input gets its own code and a message naming the field", async (t) => {
  await t.step("malformed JSON", () => void failsWith("{not json", ErrorCode.BAD_JSON, /not valid JSON/));
  await t.step("not an object", () => void failsWith("[1,2]", ErrorCode.BAD_FRAME, /an array/));
  await t.step("missing op", () => void failsWith({ id: "1" }, ErrorCode.MISSING_FIELD, /"op"/));
  await t.step("unknown op echoes the id", () => {
    const r = failsWith({ op: "fly", id: "7" }, ErrorCode.UNKNOWN_OP, /unknown op "fly"/);
    assert.equal(!r.ok && r.id, "7");
  });
  await t.step(
    "missing topic",
    () => void failsWith({ op: "publish", id: "1", value: "x" }, ErrorCode.MISSING_FIELD, /"topic"/),
  );
  await t.step(
    "missing value",
    () => void failsWith({ op: "publish", id: "1", topic: "t" }, ErrorCode.MISSING_FIELD, /"value"/),
  );
  await t.step(
    "value not a string for utf8",
    () =>
      void failsWith(
        { op: "publish", id: "1", topic: "t", value: 5 },
        ErrorCode.BAD_FIELD,
        /"value" must be a string/,
      ),
  );
  await t.step(
    "bad base64",
    () =>
      void failsWith(
        { op: "publish", id: "1", topic: "t", value: "**", encoding: "base64" },
        ErrorCode.BAD_FIELD,
        /base64/,
      ),
  );
  await t.step(
    "bad encoding",
    () =>
      void failsWith(
        { op: "publish", id: "1", topic: "t", value: "x", encoding: "utf16" },
        ErrorCode.BAD_FIELD,
        /utf8, json, base64/,
      ),
  );
  await t.step(
    "header not a string",
    () =>
      void failsWith(
        { op: "publish", id: "1", topic: "t", value: "x", headers: { a: 1 } },
        ErrorCode.BAD_FIELD,
        /header "a"/,
      ),
  );
  await t.step("a header named eb-* (the bridge's own) is refused, naming the header", () => {
    for (const name of ["eb-principal", "EB-Client-Id"]) {
      const r = failsWith(
        { op: "publish", id: "p9", topic: "t", value: "x", headers: { trace: "1", [name]: "alice" } },
        ErrorCode.BAD_FIELD,
        new RegExp(`header "${name}" is reserved`),
      );
      assert.equal(!r.ok && r.id, "p9", "the nack can name the publish");
    }
    const ok = parse({ op: "publish", id: "1", topic: "t", value: "x", headers: { "x-eb-principal": "a" } });
    assert.equal(ok.ok, true);
  });
  await t.step(
    "negative partition",
    () =>
      void failsWith(
        { op: "publish", id: "1", topic: "t", value: "x", partition: -1 },
        ErrorCode.BAD_FIELD,
        /"partition"/,
      ),
  );
  await t.step(
    "group mode without group",
    () =>
      void failsWith(
        { op: "subscribe", id: "1", topic: "t", mode: "group" },
        ErrorCode.MISSING_FIELD,
        /"group"/,
      ),
  );
  await t.step(
    "bad offset (number instead of string)",
    () =>
      void failsWith(
        { op: "subscribe", id: "1", topic: "t", from: { offsets: { "0": 5 } } },
        ErrorCode.BAD_OFFSET,
      ),
  );
  await t.step(
    "bad offset (negative)",
    () =>
      void failsWith(
        { op: "subscribe", id: "1", topic: "t", from: { offsets: { "0": "-1" } } },
        ErrorCode.BAD_OFFSET,
      ),
  );
  await t.step(
    "bad offset (beyond int64)",
    () =>
      void failsWith(
        { op: "commit", id: "1", sub: "s", partition: 0, offset: "9223372036854775808" },
        ErrorCode.BAD_OFFSET,
      ),
  );
  await t.step(
    "bad from",
    () => void failsWith({ op: "subscribe", id: "1", topic: "t", from: "middle" }, ErrorCode.BAD_OFFSET),
  );
  await t.step(
    "credit beyond the limit",
    () => void failsWith({ op: "credit", sub: "s", n: 1001 }, ErrorCode.BAD_FIELD, /from 1 to 1000/),
  );
});

Deno.test("protocol: every code says whether a retry can help", () => {
  for (const code of Object.values(ErrorCode)) assert.equal(typeof RETRYABLE[code], "boolean", code);
  assert.equal(RETRYABLE.KAFKA_UNAVAILABLE, true);
  assert.equal(RETRYABLE.TOPIC_DENIED, false);
});

Deno.test("protocol: payloads round-trip in each encoding", () => {
  const bin = new Uint8Array([0, 255, 1, 128]);
  const b64 = decodePayload(encodePayload("AP8BgA==", "base64"), "base64");
  assert.deepEqual(b64, { value: "AP8BgA==", encoding: "base64" });
  assert.deepEqual(decodePayload(encodePayload({ a: 1 }, "json"), "json"), {
    value: { a: 1 },
    encoding: "json",
  });
  assert.deepEqual(decodePayload(encodePayload("héllo", "utf8"), "utf8"), {
    value: "héllo",
    encoding: "utf8",
  });
  // Bytes that are not UTF-8 come back as base64, flagged, never mangled.
  assert.deepEqual(decodePayload(bin, "utf8"), { value: "AP8BgA==", encoding: "base64" });
  assert.deepEqual(decodePayload(encodePayload("not json", "utf8"), "json"), {
    value: "not json",
    encoding: "utf8",
  });
  assert.deepEqual(decodeKey(bin), { key: "AP8BgA==", keyEncoding: "base64" });
  assert.deepEqual(decodeKey(null), { key: null, keyEncoding: "utf8" });
});

Deno.test("protocol: exactly-once fields: seq from 1, acked below it, acked only with seq", () => {
  const base = { op: "publish", id: "1", topic: "t", value: "v" };
  const ok = parse({ ...base, seq: 5, acked: 4 });
  assert.ok(ok.ok && ok.frame.op === "publish" && ok.frame.seq === 5 && ok.frame.acked === 4);
  const bare = parse({ ...base, seq: 1 });
  assert.ok(bare.ok && bare.frame.op === "publish" && bare.frame.seq === 1 && bare.frame.acked === undefined);
  failsWith({ ...base, seq: 0 }, ErrorCode.BAD_FIELD, /"seq" must be an integer from 1/);
  failsWith({ ...base, seq: 2 ** 53 }, ErrorCode.BAD_FIELD, /"seq"/);
  failsWith({ ...base, seq: "3" }, ErrorCode.BAD_FIELD, /"seq"/);
  failsWith({ ...base, seq: 3, acked: 3 }, ErrorCode.BAD_FIELD, /"acked" \(3\) must be below "seq" \(3\)/);
  failsWith({ ...base, seq: 3, acked: 1.5 }, ErrorCode.BAD_FIELD, /"acked"/);
  failsWith({ ...base, acked: 0 }, ErrorCode.BAD_FIELD, /"acked" needs "seq"/);
  // A refused publish still names its id, so the client gets a nack it can match.
  const r = failsWith({ ...base, seq: -1 }, ErrorCode.BAD_FIELD);
  assert.equal(!r.ok && r.id, "1");
});
