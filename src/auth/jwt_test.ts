import assert from "node:assert/strict";
import { createServer } from "node:http";
import { ErrorCode } from "../protocol/mod.ts";
import { type JwtOptions, JwtVerifier } from "./jwt.ts";
import { testSigner } from "./test_tokens.ts";

const base: JwtOptions = {
  algorithms: ["HS256", "RS256", "ES256", "EdDSA"],
  publicKeys: [],
  jwksCacheMs: 60_000,
  audience: "edge-bridge",
  clockToleranceSec: 0,
  permissionsClaim: "edge-bridge",
};
const claims = { sub: "alice", "edge-bridge": { publish: ["orders"], subscribe: ["orders"], groups: ["g"] } };

for (const alg of ["HS256", "RS256", "ES256", "EdDSA"] as const) {
  Deno.test(`jwt: ${alg} from a key file verifies; wrong key, audience and expiry are refused by code`, async () => {
    const signer = await testSigner(alg);
    const other = await testSigner(alg);
    const keys = alg === "HS256"
      ? { secret: new TextEncoder().encode(signer.secret) }
      : { publicKeys: [signer.publicPem!] };
    const v = await JwtVerifier.create({ ...base, ...keys });
    const good = await v.verify(await signer.sign(claims, { expiresIn: "5m", audience: "edge-bridge" }));
    assert.ok(good.ok, JSON.stringify(good));
    assert.equal(good.principal.id, "alice");
    assert.equal(good.principal.kind, "jwt");
    assert.ok(good.principal.permissions.mayPublish("orders"));
    assert.ok(!good.principal.permissions.mayPublish("payments"));
    assert.ok(good.principal.expiresAt! > Date.now());

    const forged = await v.verify(await other.sign(claims, { expiresIn: "5m", audience: "edge-bridge" }));
    assert.deepEqual([forged.ok, !forged.ok && forged.code], [false, ErrorCode.AUTH_INVALID]);
    const wrongAud = await v.verify(await signer.sign(claims, { expiresIn: "5m", audience: "billing" }));
    assert.deepEqual([wrongAud.ok, !wrongAud.ok && wrongAud.code], [false, ErrorCode.AUTH_CLAIMS]);
    const expired = await v.verify(
      await signer.sign(claims, { expiresIn: Math.floor(Date.now() / 1000) - 10, audience: "edge-bridge" }),
    );
    assert.deepEqual([expired.ok, !expired.ok && expired.code], [false, ErrorCode.AUTH_EXPIRED]);
    const noExp = await v.verify(await signer.sign(claims, { audience: "edge-bridge" }));
    assert.deepEqual([noExp.ok, !noExp.ok && noExp.code], [false, ErrorCode.AUTH_CLAIMS], "exp is required");
  });
}

Deno.test("jwt: an algorithm not configured is refused, and so is a malformed permissions claim", async () => {
  const rs = await testSigner("RS256");
  const v = await JwtVerifier.create({ ...base, algorithms: ["RS256"], publicKeys: [rs.publicPem!] });
  const hs = await testSigner("HS256");
  const r = await v.verify(await hs.sign(claims, { expiresIn: "5m", audience: "edge-bridge" }));
  assert.deepEqual([r.ok, !r.ok && r.code], [false, ErrorCode.AUTH_INVALID]);
  const bad = await v.verify(
    await rs.sign({ sub: "a", "edge-bridge": { publish: "x" } }, {
      expiresIn: "5m",
      audience: "edge-bridge",
    }),
  );
  assert.deepEqual([bad.ok, !bad.ok && bad.code], [false, ErrorCode.AUTH_CLAIMS]);
  const garbage = await v.verify("not.a.jwt");
  assert.deepEqual([garbage.ok, !garbage.ok && garbage.code], [false, ErrorCode.AUTH_INVALID]);
});

Deno.test("jwt: keys from a JWKS URL, fetched once and cached; an unreachable JWKS is AUTH_UNAVAILABLE", async () => {
  const es = await testSigner("ES256");
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: [{ ...es.jwk, kid: "k1", alg: "ES256", use: "sig" }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    const v = await JwtVerifier.create({ ...base, jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
    for (let i = 0; i < 3; i++) {
      const r = await v.verify(
        await es.sign(claims, { expiresIn: "5m", audience: "edge-bridge", kid: "k1" }),
      );
      assert.ok(r.ok, JSON.stringify(r));
    }
    assert.equal(fetches, 1, "the JWKS is cached");
    const other = await testSigner("ES256");
    const r = await v.verify(
      await other.sign(claims, { expiresIn: "5m", audience: "edge-bridge", kid: "k9" }),
    );
    assert.deepEqual([r.ok, !r.ok && r.code], [false, ErrorCode.AUTH_INVALID]);
    assert.equal(fetches, 1, "an unknown kid within the 30 s cooldown fetches nothing");
  } finally {
    await new Promise((r) => server.close(r));
  }
  const down = await JwtVerifier.create({ ...base, jwksUrl: `http://127.0.0.1:${port}/jwks.json` });
  const r = await down.verify(await es.sign(claims, { expiresIn: "5m", audience: "edge-bridge", kid: "k1" }));
  assert.deepEqual([r.ok, !r.ok && r.code], [false, ErrorCode.AUTH_UNAVAILABLE]);
});

Deno.test('jwt: a `sub` that is not a string, or is the reserved "anonymous", is AUTH_CLAIMS', async () => {
  const signer = await testSigner("HS256");
  const v = await JwtVerifier.create({ ...base, secret: new TextEncoder().encode(signer.secret) });
  for (const sub of [42, ["alice"], { id: "alice" }, true]) {
    const token = await signer.sign({ ...claims, sub } as unknown as typeof claims, {
      expiresIn: "5m",
      audience: "edge-bridge",
    });
    const r = await v.verify(token);
    assert.deepEqual([r.ok, !r.ok && r.code], [false, ErrorCode.AUTH_CLAIMS], JSON.stringify(sub));
    assert.match(!r.ok ? r.message : "", /"sub" must be a string/);
  }
  const anonymous = await v.verify(
    await signer.sign({ ...claims, sub: "anonymous" }, { expiresIn: "5m", audience: "edge-bridge" }),
  );
  assert.deepEqual([anonymous.ok, !anonymous.ok && anonymous.code], [false, ErrorCode.AUTH_CLAIMS]);
  assert.match(!anonymous.ok ? anonymous.message : "", /reserved/);
  const dotted = await v.verify(
    await signer.sign({ ...claims, sub: "alice@example.com" }, { expiresIn: "5m", audience: "edge-bridge" }),
  );
  assert.ok(dotted.ok, "ids with dots stay valid (their names are escaped, src/protocol/namespace.ts)");
});

/** A JWKS endpoint on 127.0.0.1 (Deno.serve) whose keys the test replaces, counting its fetches. */
function jwksServer(initial: object[]) {
  const state = { keys: initial, fetches: 0 };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => {
    state.fetches++;
    return Response.json({ keys: state.keys });
  });
  return { state, url: `http://127.0.0.1:${server.addr.port}/jwks.json`, close: () => server.shutdown() };
}

const jwkOf = async (alg: "ES256" | "EdDSA", kid: string) => {
  const signer = await testSigner(alg);
  return { signer, jwk: { ...signer.jwk, kid, alg, use: "sig" } };
};
const tokenFor = (signer: Awaited<ReturnType<typeof testSigner>>, kid: string) =>
  signer.sign(claims, { expiresIn: "5m", audience: "edge-bridge", kid });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("jwt: a rotated JWKS: a new kid is fetched on first sight, and the removed key is refused after", async () => {
  const k1 = await jwkOf("ES256", "k1");
  const k2 = await jwkOf("EdDSA", "k2");
  const jwks = jwksServer([k1.jwk]);
  try {
    // A cache far longer than the test: only the unknown kid can make the verifier fetch again.
    const v = await JwtVerifier.create({
      ...base,
      jwksUrl: jwks.url,
      jwksCacheMs: 600_000,
      jwksRefetchCooldownMs: 200,
    });
    const old = await tokenFor(k1.signer, "k1");
    assert.ok((await v.verify(old)).ok);
    jwks.state.keys = [k2.jwk]; // the issuer rotates: k1 is gone, k2 signs from now on
    const cached = await v.verify(old);
    assert.ok(cached.ok, "until the JWKS is fetched again, the cached k1 still verifies");
    assert.equal(jwks.state.fetches, 1);
    await sleep(250); // past the refetch cooldown, long before the cache's age
    const fresh = await v.verify(await tokenFor(k2.signer, "k2"));
    assert.ok(fresh.ok, JSON.stringify(fresh));
    assert.equal(fresh.principal.id, "alice");
    assert.equal(jwks.state.fetches, 2, "the unknown kid k2 made the verifier fetch the JWKS again");
    const removed = await v.verify(old);
    assert.deepEqual([removed.ok, !removed.ok && removed.code], [false, ErrorCode.AUTH_INVALID]);
    assert.match(!removed.ok ? removed.message : "", /no key of the JWKS matches/);
  } finally {
    await jwks.close();
  }
});

Deno.test("jwt: once jwksCacheMs has passed the JWKS is fetched again: a removed key is refused, its successor verifies", async () => {
  const k1 = await jwkOf("ES256", "k1");
  const k2 = await jwkOf("ES256", "k2");
  const jwks = jwksServer([k1.jwk]);
  try {
    const v = await JwtVerifier.create({ ...base, jwksUrl: jwks.url, jwksCacheMs: 300 });
    const old = await tokenFor(k1.signer, "k1");
    assert.ok((await v.verify(old)).ok);
    assert.equal(jwks.state.fetches, 1);
    jwks.state.keys = [k2.jwk];
    await sleep(400); // the cached set is stale now
    const removed = await v.verify(old);
    assert.deepEqual([removed.ok, !removed.ok && removed.code], [false, ErrorCode.AUTH_INVALID]);
    assert.ok(jwks.state.fetches >= 2, "the stale set was fetched again before k1 was looked up");
    const fresh = await v.verify(await tokenFor(k2.signer, "k2"));
    assert.ok(fresh.ok, JSON.stringify(fresh));
  } finally {
    await jwks.close();
  }
});
