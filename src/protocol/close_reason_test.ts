import assert from "node:assert/strict";
import { liveCloseReason, MAX_CLOSE_REASON_BYTES, safeCloseReason, utf8Length } from "./close_reason.ts";

const bytes = (s: string) => new TextEncoder().encode(s).length;

Deno.test("close reason: short text is kept as it is", () => {
  assert.equal(safeCloseReason("too many connections"), "too many connections");
  assert.equal(safeCloseReason("x".repeat(123)), "x".repeat(123));
});

Deno.test("close reason: long text is cut to 123 bytes on a character boundary", () => {
  for (
    const text of [
      "x".repeat(500),
      "é".repeat(200), // 2 bytes each
      "€".repeat(200), // 3 bytes each
      "😀".repeat(100), // 4 bytes each, a surrogate pair in JS
      "ab😀é€".repeat(40),
      "live=ws://" + "ü".repeat(300) + ":8080/ws",
    ]
  ) {
    const cut = safeCloseReason(text);
    assert.ok(bytes(cut) <= MAX_CLOSE_REASON_BYTES, `${bytes(cut)} bytes`);
    assert.ok(cut.endsWith("…"));
    assert.ok(text.startsWith(cut.slice(0, -1)), "a prefix of the original");
    // No lone surrogate: encoding and decoding gives the same string back.
    assert.equal(new TextDecoder().decode(new TextEncoder().encode(cut)), cut);
  }
});

Deno.test("close reason: utf8Length agrees with TextEncoder, lone surrogates included", () => {
  for (const s of ["", "abc", "é€😀", "\ud800x", "x\udfff"]) assert.equal(utf8Length(s), bytes(s));
});

Deno.test("close reason: live=<url> only when the whole URL fits", () => {
  assert.equal(liveCloseReason("ws://10.0.0.2:8080/ws"), "live=ws://10.0.0.2:8080/ws");
  assert.equal(liveCloseReason(undefined), "not live");
  const long = liveCloseReason("ws://" + "a".repeat(200) + "/ws");
  assert.ok(!long.startsWith("live="), long);
  assert.ok(bytes(long) <= MAX_CLOSE_REASON_BYTES);
});
