/**
 * Authentication and authorisation through a real bridge and the real broker: every refusal
 * path by its code (and close code), the SDK passing a token, and what Kafka sees.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { hashApiKey } from "../src/auth/api_keys.ts";
import { testSigner } from "../src/auth/test_tokens.ts";
import { EdgeBridgeClient } from "../src/client/mod.ts";
import { BridgeProcess } from "./helpers/bridge.ts";
import { brokers, createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce, kcatRead } from "./helpers/kcat.ts";
import { type Frame, TestClient } from "./helpers/ws_client.ts";

const AUDIENCE = "edge-bridge-tests";
const SECRET_KEY = "ebk_sensor-key-for-tests-0123456789abcdef";
const REVOKED_KEY = "ebk_revoked-key-for-tests-0123456789abcdef";

interface Setup {
  bridge: BridgeProcess;
  dir: string;
  hs: Awaited<ReturnType<typeof testSigner>>;
  es: Awaited<ReturnType<typeof testSigner>>;
  topic: string;
  other: string;
  group: string;
}

async function setUp(): Promise<Setup> {
  const topic = uniqueTopic("auth");
  const other = uniqueTopic("auth-other");
  const group = uniqueTopic("g");
  await createTopics([{ name: topic, partitions: 2 }, { name: other, partitions: 1 }]);
  const hs = await testSigner("HS256");
  const es = await testSigner("ES256");
  const dir = await Deno.makeTempDir({ prefix: "eb-auth-" });
  await Deno.writeTextFile(`${dir}/secret`, hs.secret! + "\n");
  await Deno.writeTextFile(`${dir}/es256.pem`, es.publicPem!);
  const config = {
    auth: {
      anonymous: "disabled",
      timeoutMs: 500,
      expiryWarningMs: 1_500,
      jwt: {
        secretFile: `${dir}/secret`,
        publicKeyFiles: [`${dir}/es256.pem`],
        audience: AUDIENCE,
        clockToleranceSec: 0,
      },
      apiKeys: [
        { id: "sensor", hash: await hashApiKey(SECRET_KEY), publish: [topic], subscribe: [], groups: [] },
        { id: "retired", hash: await hashApiKey(REVOKED_KEY), revoked: true, publish: ["*"] },
      ],
    },
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const bridge = await BridgeProcess.start({ env: { EDGE_BRIDGE_CONFIG: `${dir}/config.json` } });
  return { bridge, dir, hs, es, topic, other, group };
}

/**
 * Connects offering the token in the handshake ("protocol") or in a first auth frame ("frame");
 * `first`: a frame sent as soon as the socket opens instead.
 */
function connect(url: string, token?: string, via: "protocol" | "frame" = "protocol", first?: Frame) {
  const ws = token && via === "protocol"
    ? new WebSocket(url, ["edge-bridge.v1", `bearer.${token}`])
    : new WebSocket(url);
  const opening = first ?? (token && via === "frame" ? { op: "auth", token } : undefined);
  if (opening) ws.addEventListener("open", () => ws.send(JSON.stringify(opening)), { once: true });
  return TestClient.connect(url, ws);
}

/** A refusal before welcome: the error frame's code and the close code. */
async function refusal(c: TestClient): Promise<[string, number]> {
  const closed = await c.closed;
  const error = c.frames.find((f) => f.op === "error");
  assert.equal(c.welcome, undefined, "a refused connection gets no welcome");
  return [error?.code, closed.code];
}

const perms = (p: { publish?: string[]; subscribe?: string[]; groups?: string[] }) => ({ "edge-bridge": p });

Deno.test("auth: each authentication refusal has its code; the token is never logged", async (t) => {
  const s = await setUp();
  const url = s.bridge.url;
  const tokens: string[] = [];
  try {
    await t.step(
      "anonymous refused when disabled: a frame before auth, and silence past the deadline",
      async () => {
        const c = await connect(url, undefined, "frame", { op: "hello", clientId: "x" });
        assert.deepEqual(await refusal(c), ["AUTH_REQUIRED", 4401]);
        const quiet = await connect(url);
        assert.deepEqual(await refusal(quiet), ["AUTH_TIMEOUT", 4401]);
      },
    );
    await t.step("an expired JWT is AUTH_EXPIRED", async () => {
      const token = await s.hs.sign({ sub: "alice" }, {
        expiresIn: Math.floor(Date.now() / 1000) - 60,
        audience: AUDIENCE,
      });
      tokens.push(token);
      assert.deepEqual(await refusal(await connect(url, token)), ["AUTH_EXPIRED", 4401]);
    });
    await t.step("a JWT signed with another key is AUTH_INVALID (HS256 and ES256)", async () => {
      for (const alg of ["HS256", "ES256"] as const) {
        const forger = await testSigner(alg);
        const token = await forger.sign({ sub: "alice" }, { expiresIn: "5m", audience: AUDIENCE });
        tokens.push(token);
        assert.deepEqual(await refusal(await connect(url, token, "frame")), ["AUTH_INVALID", 4401], alg);
      }
    });
    await t.step("a JWT for another audience is AUTH_CLAIMS", async () => {
      const token = await s.es.sign({ sub: "alice" }, { expiresIn: "5m", audience: "billing" });
      tokens.push(token);
      assert.deepEqual(await refusal(await connect(url, token)), ["AUTH_CLAIMS", 4401]);
    });
    await t.step("a revoked API key is AUTH_REVOKED; an unknown one AUTH_INVALID", async () => {
      assert.deepEqual(await refusal(await connect(url, REVOKED_KEY)), ["AUTH_REVOKED", 4401]);
      assert.deepEqual(await refusal(await connect(url, "ebk_never-issued", "frame")), [
        "AUTH_INVALID",
        4401,
      ]);
    });
    await t.step(
      "a good JWT (handshake or frame) and a good API key are welcomed with their principal",
      async () => {
        const token = await s.es.sign({ sub: "alice" }, { expiresIn: "5m", audience: AUDIENCE });
        tokens.push(token);
        for (const via of ["protocol", "frame"] as const) {
          const c = await connect(url, token, via);
          assert.equal(c.welcome?.principal.id, "alice", via);
          assert.equal(c.welcome?.principal.kind, "jwt");
          assert.equal(
            c.ws.protocol,
            via === "protocol" ? "edge-bridge.v1" : "",
            "the token is never echoed",
          );
          await c.close();
        }
        const k = await connect(url, SECRET_KEY);
        assert.deepEqual(k.welcome?.principal, { id: "sensor", kind: "api-key" });
        await k.close();
      },
    );
    await t.step("the bridge's log holds no token, and logs each connection's refusal once", () => {
      const log = s.bridge.lines.join("\n");
      for (const token of [...tokens, SECRET_KEY, REVOKED_KEY]) {
        assert.ok(!log.includes(token), "token in the log");
      }
      // Once at info (the refusal), besides the debug line every error frame gets.
      assert.equal(s.bridge.logs(/revoked/).filter((l) => l.level === "info").length, 1);
    });
  } finally {
    assert.equal(await s.bridge.stop(), 0);
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("auth: per-principal permissions on topics, groups, clientIds and commits", async (t) => {
  const s = await setUp();
  const url = s.bridge.url;
  const token = await s.hs.sign(
    { sub: "alice", ...perms({ publish: [s.topic], subscribe: [s.topic], groups: ["g-*"] }) },
    { expiresIn: "10m", audience: AUDIENCE },
  );
  const c = await connect(url, token);
  const nacks = (code: string) => c.frames.filter((f) => f.code === code);
  try {
    await t.step(
      "a foreign clientId is CLIENT_ID_DENIED; the principal's own (or under it) is bound",
      async () => {
        const refused = await c.request({ op: "hello", clientId: "bob" });
        assert.deepEqual([refused.op, refused.code], ["error", "CLIENT_ID_DENIED"]);
        const sneaky = await c.request({ op: "hello", clientId: "alicex" });
        assert.equal(sneaky.code, "CLIENT_ID_DENIED");
        const ok = await c.request({ op: "hello", clientId: "alice.sensor-1" });
        assert.equal(ok.op, "hello_ok");
      },
    );
    await t.step("publish outside the token's topics is PUBLISH_DENIED, twice, logged once", async () => {
      for (let i = 0; i < 2; i++) {
        const r = await c.publish(s.other, "no");
        assert.deepEqual([r.op, r.code], ["nack", "PUBLISH_DENIED"]);
      }
      assert.equal(nacks("PUBLISH_DENIED").length, 2);
      const logged = s.bridge.logs(/may not publish/).filter((l) => l.level === "info");
      assert.equal(logged.length, 1, "logged once per connection");
      const ok = await c.publish(s.topic, "yes", { partition: 0 });
      assert.equal(ok.op, "ack");
      const [record] = await kcatRead(s.topic, brokers(), 1);
      assert.equal(record.payload, "yes");
      assert.equal(record.headers["eb-principal"], "alice");
      assert.equal(record.headers["eb-client-id"], "alice.sensor-1");
      assert.equal((await kcatRead(s.other)).length, 0, "nothing reached the denied topic");
    });
    await t.step(
      "subscribe outside the topics is SUBSCRIBE_DENIED; a group outside the list GROUP_DENIED",
      async () => {
        const r = await c.request({ op: "subscribe", id: "s-denied", topic: s.other, from: "earliest" });
        assert.deepEqual([r.op, r.code], ["error", "SUBSCRIBE_DENIED"]);
        const g = await c.request({
          op: "subscribe",
          id: "g-denied",
          topic: s.topic,
          mode: "group",
          group: "ops",
        });
        assert.deepEqual([g.op, g.code], ["error", "GROUP_DENIED"]);
      },
    );
    await t.step("commits only on assigned partitions and up to the delivered offset", async () => {
      await kcatProduce(s.topic, ["p0-a", "p0-b", "p0-c"], { partition: 0 });
      const group = `g-${crypto.randomUUID().slice(0, 8)}`;
      const sub = await c.subscribe(s.topic, { mode: "group", group, from: "earliest", credit: 2 });
      const delivered = await c.waitForCount((f) => f.op === "message" && f.sub === sub.sub, 2);
      assert.deepEqual(delivered.map((m: Frame) => [m.partition, m.offset]), [[0, "0"], [0, "1"]]);
      const commit = (partition: number, offset: string) =>
        c.request({ op: "commit", sub: sub.sub, partition, offset });
      const unassigned = await commit(7, "0");
      assert.deepEqual([unassigned.op, unassigned.code], ["error", "PARTITION_NOT_ASSIGNED"]);
      const beyond = await commit(0, "2");
      assert.deepEqual([beyond.op, beyond.code], ["error", "OFFSET_NOT_DELIVERED"]);
      const never = await commit(1, "0");
      assert.deepEqual(
        [never.op, never.code],
        ["error", "OFFSET_NOT_DELIVERED"],
        "assigned, nothing delivered",
      );
      const ok = await commit(0, "1");
      assert.equal(ok.op, "committed");
      // The group is the principal's own: namespaced with its id in Kafka.
      const kafka = new Kafka({
        clientId: "auth-test",
        brokers: brokers().split(","),
        logLevel: logLevel.NOTHING,
      });
      const admin = kafka.admin();
      await admin.connect();
      try {
        const [offsets] = await admin.fetchOffsets({
          groupId: `edge-bridge.alice.${group}`,
          topics: [s.topic],
        });
        assert.equal(offsets.partitions.find((p) => p.partition === 0)?.offset, "2");
      } finally {
        await admin.disconnect();
      }
    });
  } finally {
    await c.close();
    assert.equal(await s.bridge.stop(), 0);
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("auth: an open connection gets auth_expiring, then closes 4402 when its token expires", async () => {
  const s = await setUp();
  try {
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = await s.hs.sign({ sub: "alice" }, { expiresIn: exp, audience: AUDIENCE });
    const c = await connect(s.bridge.url, token);
    assert.equal(c.welcome?.principal.expiresAt, exp * 1000);
    const warning = await c.waitFor((f) => f.op === "auth_expiring", 10_000);
    assert.equal(warning.expiresAt, exp * 1000);
    const closed = await c.closed;
    assert.equal(closed.code, 4402);
    assert.ok(Date.now() >= exp * 1000, "not closed before the token expired");
    assert.equal(c.frames.at(-1)?.code, "AUTH_EXPIRED");
  } finally {
    assert.equal(await s.bridge.stop(), 0);
    await Deno.remove(s.dir, { recursive: true });
  }
});

Deno.test("auth: the SDK passes a token (frame or subprotocol), refreshes it, and binds its clientId", async () => {
  const s = await setUp();
  try {
    for (const tokenVia of ["frame", "protocol"] as const) {
      const client = new EdgeBridgeClient({ urls: [s.bridge.url], token: SECRET_KEY, tokenVia });
      try {
        const ack = await client.publish(s.topic, `via ${tokenVia}`, { partition: 1 });
        assert.equal(ack.partition, 1);
        assert.match(client.clientId, /^sensor\./);
        await assert.rejects(client.publish(s.other, "no"), /PUBLISH_DENIED/);
      } finally {
        await client.close();
      }
    }
    // A token function: called per connection, and again on auth_expiring; the connection stays open.
    let issued = 0;
    const client = new EdgeBridgeClient({
      urls: [s.bridge.url],
      token: () => {
        issued++;
        return s.hs.sign({ sub: "alice", ...perms({ publish: [s.topic] }) }, {
          expiresIn: Math.floor(Date.now() / 1000) + 3,
          audience: AUDIENCE,
        });
      },
    });
    try {
      await client.publish(s.topic, "before refresh", { partition: 1 });
      await new Promise((r) => setTimeout(r, 4_500)); // past the first token's expiry
      assert.ok(issued >= 2, `the token was refreshed (${issued} issued)`);
      await client.publish(s.topic, "after refresh", { partition: 1 });
      assert.equal(client.state.attempt, 0);
      assert.equal(s.bridge.logs(/expired/).length, 0, "the connection never expired");
    } finally {
      await client.close();
    }
    const payloads = (await kcatRead(s.topic, brokers(), 4)).map((r) => r.payload);
    assert.deepEqual(payloads.sort(), ["after refresh", "before refresh", "via frame", "via protocol"]);
  } finally {
    assert.equal(await s.bridge.stop(), 0);
    await Deno.remove(s.dir, { recursive: true });
  }
});
