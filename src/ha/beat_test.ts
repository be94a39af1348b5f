import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { type Beat, BeatFreshness, decodeBeat, encodeBeat, MAX_BEAT_BYTES } from "./beat.ts";

const key = new TextEncoder().encode("k".repeat(32));
const beat = (over: Partial<Beat> = {}): Beat => ({
  v: 3,
  pair: "p",
  incarnation: 1_700_000_000_000,
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
  // What a node of a version that allowed running without a key sends: "-" for the HMAC.
  const keyless = new TextEncoder().encode(JSON.stringify(beat()) + "\n-");
  assert.equal((decodeBeat(keyless, key, "p") as { reason: string }).reason, "unsigned");
  const plainV1 = new TextEncoder().encode(JSON.stringify({ v: 1, pair: "p", node: "x", role: "live" }));
  assert.equal((decodeBeat(plainV1, key, "p") as { reason: string }).reason, "unsigned");
});

Deno.test("beat: every field is checked, even under a valid signature", () => {
  const bad: [string, unknown][] = [
    ["array", [1]],
    ["null", null],
    ["v1", { ...beat(), v: 1 }],
    ["v2, with a random boot id", { ...beat(), v: 2, incarnation: undefined, boot: "0".repeat(32) }],
    ["extra field", { ...beat(), admin: true }],
    ["long node", beat({ node: "n".repeat(101) })],
    ["node with spaces", beat({ node: "a b" })],
    ["no incarnation", { ...beat(), incarnation: undefined }],
    ["incarnation 0", beat({ incarnation: 0 })],
    ["incarnation fraction", beat({ incarnation: 1.5 })],
    ["incarnation string", { ...beat(), incarnation: "7" }],
    ["huge incarnation", beat({ incarnation: 2 ** 60 })],
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

const fresh = (f: BeatFreshness, node: string, inc: number, seq: number) => f.accept(node, inc, seq).fresh;

Deno.test("beat freshness: sequences only go up within an incarnation, and incarnations only go up", () => {
  const f = new BeatFreshness();
  assert.ok(fresh(f, "a", 5, 1));
  assert.ok(fresh(f, "a", 5, 2));
  assert.ok(!fresh(f, "a", 5, 2), "the same beat again");
  assert.ok(!fresh(f, "a", 5, 1), "an older beat");
  assert.deepEqual(f.accept("a", 6, 1), { fresh: true, newIncarnation: true }, "a restart: seq from 1");
  assert.deepEqual(f.accept("a", 6, 2), { fresh: true, newIncarnation: false });
  assert.ok(!fresh(f, "a", 5, 99), "an older incarnation, whatever its sequence");
  assert.ok(!fresh(f, "a", 1, 1));
  assert.ok(fresh(f, "a", 9, 40), "a higher incarnation is taken at any sequence (its first beats lost)");
  assert.ok(!fresh(f, "a", 6, 3), "the one it displaced never comes back");
  assert.ok(fresh(f, "b", 1, 1), "per node");
  const small = new BeatFreshness({}, 2);
  assert.ok(fresh(small, "x", 1, 1) && fresh(small, "y", 1, 1));
  assert.ok(!fresh(small, "z", 1, 1), "nodes tracked are bounded");
  assert.ok(fresh(small, "x", 1, 2));
});

Deno.test("beat freshness: a receiver that restarted and forgot is fooled at most until the peer speaks", () => {
  // The review's attack: beats recorded from an old incarnation (10) of peer a reach a receiver that
  // has just started and knows nothing, before a's genuine beats (incarnation 12) do.
  const f = new BeatFreshness();
  assert.ok(fresh(f, "a", 10, 500), "nothing to tell it from the current one yet");
  assert.ok(fresh(f, "a", 10, 501));
  assert.deepEqual(
    f.accept("a", 12, 3000),
    { fresh: true, newIncarnation: true },
    "never blocks a higher one",
  );
  assert.ok(fresh(f, "a", 12, 3001), "the genuine beats go on being accepted");
  for (let seq = 1; seq < 600; seq++) assert.ok(!fresh(f, "a", 10, seq), "and the old one is gone for good");
  assert.ok(!fresh(f, "a", 11, 1), "so is any incarnation in between");
});

Deno.test("beat freshness: incarnations remembered across the receiver's restart refuse older beats at once", () => {
  const f = new BeatFreshness({ a: 12 });
  assert.ok(!fresh(f, "a", 10, 500), "an incarnation older than the one remembered");
  assert.ok(!fresh(f, "a", 11, 1));
  // The remembered incarnation may still be running: its sequence was not kept, so its next beat
  // is taken at any sequence, and the usual order holds from there.
  assert.deepEqual(f.accept("a", 12, 4000), { fresh: true, newIncarnation: false });
  assert.ok(!fresh(f, "a", 12, 3999));
  assert.ok(fresh(f, "a", 13, 1), "a's next start");
});
