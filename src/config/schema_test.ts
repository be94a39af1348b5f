import assert from "node:assert/strict";
import { configSchema } from "./schema.ts";

const issues = (input: unknown) => {
  const r = configSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
};

Deno.test("schema: auth.jwt.jwksUrl must be https, or http to a loopback host", () => {
  for (
    const url of [
      "https://auth.example.com/jwks.json",
      "http://127.0.0.1:8081/jwks",
      "http://localhost/j",
      "http://[::1]:9/j",
    ]
  ) {
    assert.deepEqual(issues({ auth: { jwt: { jwksUrl: url } } }), [], url);
  }
  for (
    const url of ["http://auth.example.com/jwks.json", "http://10.0.0.5/jwks", "ftp://x/jwks", "not a url"]
  ) {
    const found = issues({ auth: { jwt: { jwksUrl: url } } });
    assert.equal(found.length, 1, url);
    assert.match(
      found[0],
      /^auth\.jwt\.jwksUrl: must be an https:\/\/ URL \(http:\/\/ only to a loopback host/,
    );
  }
});

Deno.test('schema: an API key may not be named "anonymous" (the anonymous connections\' namespace)', () => {
  const key = { hash: `sha256:${"0".repeat(64)}` };
  assert.deepEqual(issues({ auth: { apiKeys: [{ id: "sensor.fleet", ...key }] } }), []);
  const found = issues({ auth: { apiKeys: [{ id: "anonymous", ...key }] } });
  assert.deepEqual(found, ['auth.apiKeys.0.id: "anonymous" is reserved for connections without a token']);
});

Deno.test("schema: heartbeat mode requires the pair's key file; file-lock does not", () => {
  const hb = { mode: "heartbeat", heartbeat: { peers: ["10.0.0.2:7946"] } };
  const without = issues({ ha: hb });
  assert.equal(without.length, 1);
  assert.match(
    without[0],
    /^ha\.heartbeat\.keyFile: required when ha\.mode is heartbeat: unsigned beats could be forged/,
  );
  assert.deepEqual(issues({ ha: { ...hb, heartbeat: { ...hb.heartbeat, keyFile: "/etc/hb.key" } } }), []);
  assert.deepEqual(issues({ ha: { mode: "file-lock", fileLock: { dir: "/shared" } } }), []);
  const slowPoll = issues({
    ha: { mode: "file-lock", fileLock: { dir: "/shared", pollMs: 5000, verifyMs: 2000 } },
  });
  assert.equal(slowPoll.length, 1);
  assert.match(slowPoll[0], /^ha\.fileLock\.pollMs: must not exceed ha\.fileLock\.verifyMs \(2000\)/);
});
