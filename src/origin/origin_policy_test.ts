import assert from "node:assert/strict";
import { normalizeOrigin, OriginPolicy } from "./origin_policy.ts";

Deno.test("origin: clients without an Origin header (not browsers) are not checked", () => {
  assert.deepEqual(new OriginPolicy([], false).check(undefined, "127.0.0.1:8080"), { allowed: true });
});

Deno.test("origin: the bridge's own pages are allowed, by IP, localhost or a known name", () => {
  const p = new OriginPolicy([], false, ["edge-1.example"]);
  assert.ok(p.check("http://127.0.0.1:8080", "127.0.0.1:8080").allowed);
  assert.ok(p.check("http://localhost:8080", "localhost:8080").allowed);
  assert.ok(p.check("http://[::1]:8080", "[::1]:8080").allowed);
  assert.ok(p.check("http://EDGE-1.example:8080", "edge-1.example:8080").allowed);
  assert.ok(p.check("http://10.1.2.3", "10.1.2.3:80").allowed, "the default port is the same origin");
});

Deno.test("origin: another port, scheme or host on the same machine is refused, loopback included", () => {
  const p = new OriginPolicy([], false);
  const v = p.check("http://127.0.0.1:9999", "127.0.0.1:8080");
  assert.deepEqual(v, {
    allowed: false,
    why: "origin http://127.0.0.1:9999 is not in server.allowedOrigins",
  });
  assert.equal(p.check("https://127.0.0.1:8080", "127.0.0.1:8080").allowed, false, "scheme differs");
  assert.equal(p.check("http://localhost:8080", "127.0.0.1:8080").allowed, false);
  assert.equal(p.check("null", "127.0.0.1:8080").allowed, false, "file:// and sandboxed pages send null");
  assert.match((p.check("null", "x") as { why: string }).why, /is not http\(s\)/);
});

Deno.test("origin: a page under an unknown name that resolves to the bridge (DNS rebinding) is refused", () => {
  const p = new OriginPolicy([], false);
  assert.equal(p.check("http://evil.example:8080", "evil.example:8080").allowed, false);
});

Deno.test("origin: with TLS the bridge's own pages are https", () => {
  const p = new OriginPolicy([], true);
  assert.ok(p.check("https://127.0.0.1:8443", "127.0.0.1:8443").allowed);
  assert.equal(p.check("http://127.0.0.1:8443", "127.0.0.1:8443").allowed, false);
});

Deno.test("origin: listed origins are allowed, compared as browsers send them", () => {
  const p = new OriginPolicy(["https://app.example.com", "http://127.0.0.1:3000"], false);
  assert.ok(p.check("https://app.example.com", "bridge:8080").allowed);
  assert.ok(p.check("https://APP.example.com:443", "bridge:8080").allowed);
  assert.ok(p.check("http://127.0.0.1:3000", "127.0.0.1:8080").allowed);
  assert.equal(p.check("http://app.example.com", "bridge:8080").allowed, false);
  assert.equal(p.check("https://app.example.com.evil.example", "bridge:8080").allowed, false);
  assert.ok(
    p.check("https://app.example.com", "app.example.com").allowed,
    "a listed host name is known",
  );
});

Deno.test('origin: "*" allows every origin', () => {
  assert.ok(new OriginPolicy(["*"], false).check("https://anything.example", "127.0.0.1:8080").allowed);
});

Deno.test("origin: normalizeOrigin", () => {
  assert.equal(normalizeOrigin("HTTP://Example.COM:80"), "http://example.com");
  assert.equal(normalizeOrigin("ftp://x"), undefined);
  assert.equal(normalizeOrigin("not a url"), undefined);
});
