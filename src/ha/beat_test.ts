import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { type Beat, BeatFreshness, decodeBeat, encodeBeat, MAX_BEAT_BYTES, newBootId } from "./beat.ts";

const key = new TextEncoder().encode("k".repeat(32));
const beat = (over: Partial<Beat> = {}): Beat => ({
  v: 2,
  pair: "p",
  boot: "0123456789abcdef0123456789abcdef",
  seq: 1,
  node: "a",
  priority: 100,
  role: "live",
  epoch: 3,
  kafkaUp: true,
  readyForMs: 0,
  url: "ws://127.0.0.1:8080/ws",
  ...over,
});
/** Signs any body, as a holder of the key would (to test field checks behind the signature). */
function signed(body: unknown): Uint8Array {
  const b = Buffer.from(JSON.stringify(body));
  return Buffer.concat([b, Buffer.from("\n" + createHmac("sha256", key).update(b).digest("base64url"))]);
}

Deno.test("beat: a signed beat decodes to what was sent", () => {
  const d = decodeBeat(encodeBeat(beat(), key), key, "p");
  assert.deepEqual(d, { ok: true, beat: beat() });
  assert.match(newBootId(), /^[0-9a-f]{32}$/);
});

Deno.test("beat: a wrong key, an altered body or no signature is refused", () => {
  const other = new TextEncoder().encode("o".repeat(32));
  assert.equal(
    (decodeBeat(encodeBeat(beat(), other), key, "p") as { reason: string }).reason,
    "bad_signature",
  );
  const data = encodeBeat(beat({ epoch: 3 }), key);
  const altered = Buffer.from(Buffer.from(data).toString().replace('"epoch":3', '"epoch":9'));
  assert.equal((decodeBeat(altered, key, "p") as { reason: string }).reason, "bad_signature");
  assert.equal(
    (decodeBeat(encodeBeat(beat(), undefined), key, "p") as { reason: string }).reason,
    "unsigned",
  );
  const plainV1 = new TextEncoder().encode(JSON.stringify({ v: 1, pair: "p", node: "x", role: "live" }));
  assert.equal((decodeBeat(plainV1, key, "p") as { reason: string }).reason, "unsigned");
  // A node without a key does not take signed beats (a key configured on one side only).
  assert.equal((decodeBeat(data, undefined, "p") as { reason: string }).reason, "bad_signature");
  assert.equal(decodeBeat(encodeBeat(beat(), undefined), undefined, "p").ok, true);
});

Deno.test("beat: every field is checked, even under a valid signature", () => {
  const bad: [string, unknown][] = [
    ["array", [1]],
    ["null", null],
    ["v1", { ...beat(), v: 1 }],
    ["extra field", { ...beat(), admin: true }],
    ["long node", beat({ node: "n".repeat(101) })],
    ["node with spaces", beat({ node: "a b" })],
    ["boot", beat({ boot: "xyz" })],
    ["seq 0", beat({ seq: 0 })],
    ["seq fraction", beat({ seq: 1.5 })],
    ["seq string", { ...beat(), seq: "1" }],
    ["priority", beat({ priority: 5000 })],
    ["role", { ...beat(), role: "king" }],
    ["negative epoch", beat({ epoch: -1 })],
    ["huge epoch", beat({ epoch: 2 ** 60 })],
    ["kafkaUp", { ...beat(), kafkaUp: "yes" }],
    ["readyForMs", { ...beat(), readyForMs: -5 }],
    ["url scheme", beat({ url: "http://x" })],
    ["non-ASCII url", beat({ url: "ws://" + "ü".repeat(50) })],
    ["long url", beat({ url: "ws://" + "a".repeat(600) })],
    ["url with space", beat({ url: "ws://a b" })],
    ["paused", { ...beat(), paused: 1 }],
  ];
  for (const [name, body] of bad) {
    const d = decodeBeat(signed(body), key, "p");
    assert.equal(d.ok, false, name);
    assert.equal((d as { reason: string }).reason, "bad_field", name);
  }
  assert.equal(
    (decodeBeat(signed(beat({ pair: "q" })), key, "p") as { reason: string }).reason,
    "other_pair",
  );
});

Deno.test("beat: malformed datagrams are refused without throwing", () => {
  const cases: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([0xff, 0xfe, 0x0a]),
    new Uint8Array(MAX_BEAT_BYTES + 1),
    new TextEncoder().encode("\n"),
    new TextEncoder().encode("{\n" + "A".repeat(43)),
    encodeBeat(beat(), key).subarray(0, 50),
  ];
  for (const c of cases) assert.equal(decodeBeat(c, key, "p").ok, false);
  // Not UTF-8 under a valid signature.
  const body = Buffer.from([0x7b, 0xff, 0x7d]);
  const data = Buffer.concat([
    body,
    Buffer.from("\n" + createHmac("sha256", key).update(body).digest("base64url")),
  ]);
  assert.equal((decodeBeat(data, key, "p") as { reason: string }).reason, "not_json");
});

Deno.test("beat freshness: sequences only go up, and an old boot never comes back", () => {
  const f = new BeatFreshness();
  assert.ok(f.accept("a", "boot1", 1));
  assert.ok(f.accept("a", "boot1", 2));
  assert.ok(!f.accept("a", "boot1", 2), "the same beat again");
  assert.ok(!f.accept("a", "boot1", 1), "an older beat");
  assert.ok(f.accept("a", "boot2", 1), "a restart starts a new boot from 1");
  assert.ok(!f.accept("a", "boot1", 99), "the old boot is retired, whatever its sequence");
  assert.ok(f.accept("b", "boot1", 1), "per node");
  const small = new BeatFreshness(2);
  assert.ok(small.accept("x", "b", 1) && small.accept("y", "b", 1));
  assert.ok(!small.accept("z", "b", 1), "nodes tracked are bounded");
  assert.ok(small.accept("x", "b", 2));
});
