import assert from "node:assert/strict";
import { isBoundClientId, isReservedHeader, principalNamespace } from "./namespace.ts";

Deno.test("namespace: ids without '.' or '%' are their own namespace (names as before)", () => {
  for (const id of ["alice", "sensor-fleet", "svc_1@corp", "anonymous"]) {
    assert.equal(principalNamespace(id), id);
  }
});

Deno.test("namespace: '.' and '%' are escaped, so a namespace never holds a '.' and ids never share one", () => {
  assert.equal(principalNamespace("a.b"), "a%2Eb");
  assert.equal(principalNamespace("a%2Eb"), "a%252Eb");
  assert.equal(principalNamespace("alice@example.com"), "alice@example%2Ecom");
  const ids = ["a", "a.b", "a%2Eb", "a%b", "a.", ".a", "a..b", "%", "%25", "."];
  const namespaces = ids.map(principalNamespace);
  assert.equal(new Set(namespaces).size, ids.length, "injective over these ids");
  for (const ns of namespaces) assert.ok(!ns.includes("."), ns);
  // The collision of the review: principal "a" with group "b.x" and principal "a.b" with group "x".
  assert.notEqual(`${principalNamespace("a")}.b.x`, `${principalNamespace("a.b")}.x`);
});

Deno.test("namespace: bound clientIds are the namespace, or under it with prefix binding", () => {
  assert.ok(isBoundClientId("alice", "alice", "exact"));
  assert.ok(!isBoundClientId("alice.s1", "alice", "exact"));
  assert.ok(isBoundClientId("alice.s1", "alice", "prefix"));
  assert.ok(!isBoundClientId("alicex", "alice", "prefix"));
  // "a" may not take "a.b": that is principal "a.b"'s own clientId (as "a%2Eb").
  assert.ok(isBoundClientId("a.b", "a", "prefix"), "under a's namespace");
  assert.ok(!isBoundClientId("a.b", "a.b", "prefix"), "a.b's clientIds are a%2Eb[.…]");
  assert.ok(isBoundClientId("a%2Eb", "a.b", "exact"));
  assert.ok(isBoundClientId("a%2Eb.s1", "a.b", "prefix"));
  assert.ok(!isBoundClientId("a%2Eb.s1", "a", "prefix"));
  assert.ok(!isBoundClientId("alice", "anonymous", "prefix"));
  assert.ok(isBoundClientId("anonymous.dev-1", "anonymous", "prefix"));
});

Deno.test("namespace: eb-* header names are reserved in any case", () => {
  for (const name of ["eb-principal", "EB-Principal", "eb-", "Eb-anything"]) {
    assert.ok(isReservedHeader(name), name);
  }
  for (const name of ["e", "eb", "ebx-principal", "trace", "x-eb-principal"]) {
    assert.ok(!isReservedHeader(name), name);
  }
});
