import assert from "node:assert/strict";
import { liveFromReason, UrlRing } from "./urls.ts";

const A = "ws://a:8080/ws", B = "ws://b:8080/ws", C = "wss://c/ws";

Deno.test("UrlRing: walks the list in order and wraps", () => {
  const r = new UrlRing([A, B]);
  assert.equal(r.current, A);
  r.next();
  assert.equal(r.current, B);
  r.next();
  assert.equal(r.current, A);
});

Deno.test("UrlRing: a live hint in the list jumps to it", () => {
  const r = new UrlRing([A, B, C]);
  r.next(C);
  assert.equal(r.current, C);
  r.next();
  assert.equal(r.current, A);
});

Deno.test("UrlRing: a live hint outside the list is tried, then the list goes on", () => {
  const r = new UrlRing([A, B]);
  r.next("ws://elsewhere:9/ws");
  assert.equal(r.current, "ws://elsewhere:9/ws");
  r.next();
  assert.equal(r.current, B);
});

Deno.test("UrlRing: a hint naming the current node, or not a URL, is ignored", () => {
  const r = new UrlRing([A, B]);
  r.next(A);
  assert.equal(r.current, B);
  r.next("not a url");
  assert.equal(r.current, A);
});

Deno.test("UrlRing: refuses an empty list and non-WebSocket URLs", () => {
  assert.throws(() => new UrlRing([]), /at least one/);
  assert.throws(() => new UrlRing(["http://a/ws"]), /not a ws:\/\/ or wss:\/\/ URL/);
});

Deno.test("liveFromReason reads live=<url>", () => {
  assert.equal(liveFromReason("live=ws://b:8080/ws"), "ws://b:8080/ws");
  assert.equal(liveFromReason("not live"), undefined);
  assert.equal(liveFromReason(""), undefined);
});
