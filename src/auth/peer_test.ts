import assert from "node:assert/strict";
import { isLocalPeer, peerOf } from "./peer.ts";

Deno.test("peer: loopback without forwarding headers is local; any forwarding header makes it a proxy's", () => {
  assert.ok(isLocalPeer(peerOf("127.0.0.1", {})));
  assert.ok(isLocalPeer(peerOf("::ffff:127.0.0.1", { host: "x" })));
  assert.ok(isLocalPeer(peerOf("::1", {})));
  assert.ok(!isLocalPeer(peerOf("10.0.0.1", {})));
  assert.ok(!isLocalPeer(peerOf(undefined, {})));
  for (const h of ["forwarded", "x-forwarded-for", "x-real-ip"]) {
    assert.ok(!isLocalPeer(peerOf("127.0.0.1", { [h]: "" })), `${h}, even empty`);
  }
});

Deno.test("peer: limits count the client a proxy on loopback names, never one named from elsewhere", () => {
  const at = (remote: string, headers: Record<string, string | string[]>) =>
    peerOf(remote, headers).limitAddress;
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "6.6.6.6, 203.0.113.9" }), "203.0.113.9", "the last hop");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": ["6.6.6.6", "203.0.113.9"] }), "203.0.113.9");
  assert.equal(at("127.0.0.1", { "x-real-ip": "::ffff:203.0.113.9" }), "203.0.113.9");
  assert.equal(at("127.0.0.1", { forwarded: 'for=1.1.1.1, for="[2001:db8::1]:4711"' }), "2001:db8::1");
  assert.equal(
    at("127.0.0.1", { forwarded: "proto=https" }),
    "proxy@127.0.0.1",
    "counted (not taken for loopback)",
  );
  // A port the proxy added is not part of the client's address: one host, one count.
  assert.equal(at("127.0.0.1", { forwarded: 'for="192.0.2.43:47011"' }), "192.0.2.43");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "203.0.113.9:4711" }), "203.0.113.9");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "[2001:db8::7]:4711" }), "2001:db8::7");
  assert.equal(at("127.0.0.1", { "x-real-ip": "[2001:db8::7]" }), "2001:db8::7");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "::ffff:203.0.113.9:4711" }), "203.0.113.9");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "[::ffff:203.0.113.9]:4711" }), "203.0.113.9");
  assert.equal(at("127.0.0.1", { "x-forwarded-for": "2001:db8::7" }), "2001:db8::7", "bare IPv6 kept whole");
  assert.equal(at("10.0.0.1", { "x-forwarded-for": "203.0.113.9" }), "10.0.0.1", "not believed");
  assert.equal(at("127.0.0.1", {}), "127.0.0.1");
});
