import assert from "node:assert/strict";
import { buildConfig } from "../config/load.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { hashApiKey } from "./api_keys.ts";
import { Authenticator } from "./authenticator.ts";
import { peerOf } from "./peer.ts";
import { isLoopbackHost } from "../util/ip.ts";

const local = peerOf("127.0.0.1", {});
const proxied = peerOf("127.0.0.1", { "x-forwarded-for": "203.0.113.9" });
const remote = peerOf("10.0.0.7", {});

const authFor = (sets: string[]) => {
  const config = buildConfig({ sets });
  return new Authenticator(config.auth, config.server.host, undefined, config.limits.countLoopback);
};

Deno.test("auth: anonymous by default only on a loopback address, to a local connection not through a proxy", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) assert.ok(isLoopbackHost(h), h);
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "edge-1.example", "128.0.0.1"]) {
    assert.ok(!isLoopbackHost(h), h);
  }
  const byDefault = authFor([]);
  assert.equal(byDefault.anonymousFor(local)?.id, "anonymous", "127.0.0.1 by default");
  assert.equal(byDefault.anonymousFor(proxied), undefined, "a proxy on loopback speaks for others");
  assert.equal(byDefault.anonymousFor(peerOf("::1", { forwarded: "for=192.0.2.1" })), undefined);
  assert.equal(byDefault.anonymousFor(remote), undefined);
  assert.equal(authFor(["server.host=0.0.0.0"]).anonymousFor(local), undefined, "not beyond loopback");
  const enabled = authFor(["server.host=0.0.0.0", "auth.anonymous=enabled"]);
  for (const p of [local, proxied, remote]) assert.ok(enabled.anonymousFor(p), "enabled: everyone");
  assert.equal(authFor(["auth.anonymous=disabled"]).anonymousFor(local), undefined);
});

Deno.test("auth: a warning whenever anonymous connections may get a bare *", () => {
  assert.match(authFor([]).anonymousWarning!, /loopback.*publish, subscribe, groups on "\*".*disabled/);
  assert.match(
    authFor(["auth.anonymous=enabled", "auth.anonymousPermissions.publish=telemetry.*"]).anonymousWarning!,
    /every connection .* subscribe, groups on "\*"/,
  );
  assert.equal(authFor(["auth.anonymous=disabled"]).anonymousWarning, undefined);
  assert.equal(authFor(["server.host=0.0.0.0"]).anonymousWarning, undefined, "no anonymous access at all");
  const narrow = [
    "auth.anonymousPermissions.publish=telemetry.*",
    "auth.anonymousPermissions.subscribe=telemetry.*",
    "auth.anonymousPermissions.groups=",
  ];
  assert.equal(authFor(narrow).anonymousWarning, undefined);
});

Deno.test("auth: past auth.maxFailuresPerIp failures an address is refused unchecked, others are not", async () => {
  const file = {
    name: "c.json",
    text: JSON.stringify({
      auth: {
        maxFailuresPerIp: 3,
        failureWindowMs: 60_000,
        apiKeys: [{ id: "sensor", hash: await hashApiKey("ebk_good") }],
      },
    }),
  };
  const config = buildConfig({ file });
  const auth = new Authenticator(config.auth, config.server.host, undefined, false);
  for (let i = 0; i < 3; i++) {
    assert.equal((await auth.authenticate("ebk_bad", remote)).ok, false);
  }
  const limited = await auth.authenticate("ebk_good", remote);
  assert.ok(!limited.ok);
  assert.equal(limited.code, ErrorCode.AUTH_RATE_LIMITED, "even a good key: it is not checked");
  assert.match(limited.message, /too many failed authentications from 10\.0\.0\.7; try again in 60 s/);
  assert.ok((await auth.authenticate("ebk_good", peerOf("10.0.0.8", {}))).ok, "per address");
  for (let i = 0; i < 5; i++) await auth.authenticate("ebk_bad", local);
  assert.ok((await auth.authenticate("ebk_good", local)).ok, "loopback not counted by default");
  for (let i = 0; i < 3; i++) await auth.authenticate("ebk_bad", proxied);
  const behindProxy = await auth.authenticate(
    "ebk_good",
    peerOf("127.0.0.1", { "x-forwarded-for": "203.0.113.9" }),
  );
  assert.equal(
    !behindProxy.ok && behindProxy.code,
    ErrorCode.AUTH_RATE_LIMITED,
    "counted by the proxy's client",
  );
  assert.ok(
    (await auth.authenticate("ebk_good", peerOf("127.0.0.1", { "x-forwarded-for": "203.0.113.10" }))).ok,
  );
  // IPv6: one host's /64, whichever of its addresses (and source ports) it fails from.
  for (const from of ["2001:db8:0:7::1", "2001:db8:0:7::2", "[2001:db8:0:7::3]:4711"]) {
    await auth.authenticate("ebk_bad", peerOf("127.0.0.1", { "x-forwarded-for": from }));
  }
  const v6 = await auth.authenticate("ebk_good", peerOf("2001:db8:0:8::9", {}));
  assert.ok(v6.ok, "not an address of that /64");
  const sameBlock = await auth.authenticate("ebk_good", peerOf("2001:db8:0:7::abcd", {}));
  assert.ok(!sameBlock.ok);
  assert.match(sameBlock.message, /too many failed authentications from 2001:db8:0:7::\/64;/);
});

Deno.test("auth: scrypt keys are checked a few at a time; beyond the queue AUTH_UNAVAILABLE, retryable", async () => {
  const file = {
    name: "c.json",
    text: JSON.stringify({
      auth: {
        maxConcurrentKeyHashes: 1,
        maxQueuedKeyHashes: 1,
        apiKeys: [{ id: "person", hash: await hashApiKey("chosen words", "scrypt") }],
      },
    }),
  };
  const config = buildConfig({ file });
  const auth = new Authenticator(config.auth, config.server.host, undefined, false);
  const outcomes = await Promise.all(
    ["person.wrong 1", "person.wrong 2", "person.wrong 3", "person.wrong 4"].map((t) =>
      auth.authenticate(t, remote)
    ),
  );
  const codes = outcomes.map((o) => !o.ok && o.code);
  assert.deepEqual(codes, ["AUTH_INVALID", "AUTH_INVALID", "AUTH_UNAVAILABLE", "AUTH_UNAVAILABLE"]);
  assert.match((outcomes[2] as { message: string }).message, /too many API keys are being checked at once/);
  const ok = await auth.authenticate("person.chosen words", remote);
  assert.ok(ok.ok, "busy refusals are not failures of the address, and the queue drained");
});

Deno.test("auth: API keys by hash; a revoked one is AUTH_REVOKED, an unknown one AUTH_INVALID", async () => {
  const file = {
    name: "c.json",
    text: JSON.stringify({
      auth: {
        apiKeys: [
          { id: "sensor", hash: await hashApiKey("ebk_good"), publish: ["telemetry"] },
          { id: "old", hash: await hashApiKey("ebk_old"), revoked: true },
        ],
      },
    }),
  };
  const config = buildConfig({ file });
  const auth = new Authenticator(config.auth, config.server.host, undefined);
  const good = await auth.authenticate("ebk_good");
  assert.ok(good.ok);
  assert.equal(good.principal.id, "sensor");
  assert.equal(good.principal.kind, "api-key");
  assert.ok(good.principal.permissions.mayPublish("telemetry"));
  assert.ok(!good.principal.permissions.maySubscribe("telemetry"));
  const revoked = await auth.authenticate("ebk_old");
  assert.deepEqual([revoked.ok, !revoked.ok && revoked.code], [false, ErrorCode.AUTH_REVOKED]);
  const unknown = await auth.authenticate("ebk_nope");
  assert.deepEqual([unknown.ok, !unknown.ok && unknown.code], [false, ErrorCode.AUTH_INVALID]);
  const jwt = await auth.authenticate("aaa.bbb.ccc");
  assert.deepEqual([jwt.ok, !jwt.ok && jwt.message], [false, "JWTs are not accepted here"]);
});

Deno.test("auth: config refuses a malformed key hash, naming the key", () => {
  assert.throws(
    () =>
      buildConfig({ file: { name: "c.json", text: '{"auth":{"apiKeys":[{"id":"a","hash":"md5:00"}]}}' } }),
    /auth\.apiKeys\.0\.hash .*sha256:<64 hex>/,
  );
});
