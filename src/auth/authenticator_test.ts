import assert from "node:assert/strict";
import { buildConfig } from "../config/load.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { hashApiKey } from "./api_keys.ts";
import { Authenticator } from "./authenticator.ts";
import { isLoopbackHost } from "./principal.ts";

Deno.test("auth: anonymous by default only on a loopback address", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) assert.ok(isLoopbackHost(h), h);
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "edge-1.example", "128.0.0.1"]) {
    assert.ok(!isLoopbackHost(h), h);
  }
  const at = (sets: string[]) =>
    new Authenticator(buildConfig({ sets }).auth, buildConfig({ sets }).server.host, undefined);
  assert.ok(at([]).anonymous, "127.0.0.1 by default");
  assert.equal(at(["server.host=0.0.0.0"]).anonymous, undefined);
  assert.ok(at(["server.host=0.0.0.0", "auth.anonymous=enabled"]).anonymous);
  assert.equal(at(["auth.anonymous=disabled"]).anonymous, undefined);
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
