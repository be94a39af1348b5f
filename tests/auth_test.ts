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

/** The Kafka group's committed offset on partition 0 of `topic` (read with an admin client). */
async function groupOffset(groupId: string, topic: string): Promise<string | undefined> {
  const kafka = new Kafka({
    clientId: "auth-test",
    brokers: brokers().split(","),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
    return offsets.partitions.find((p) => p.partition === 0)?.offset;
  } finally {
    await admin.disconnect();
  }
}

/** A bridge that serves anonymous connections and API keys side by side (mixed mode). */
async function mixedBridge(topic: string, keys: { id: string; key: string }[]) {
  const dir = await Deno.makeTempDir({ prefix: "eb-auth-mixed-" });
  const apiKeys = await Promise.all(keys.map(async (k) => ({
    id: k.id,
    hash: await hashApiKey(k.key),
    publish: [topic],
    subscribe: [topic],
    groups: ["*"],
  })));
  const config = {
    auth: {
      anonymous: "enabled",
      anonymousPermissions: { publish: [topic], subscribe: [topic], groups: ["*"] },
      apiKeys,
    },
  };
  await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify(config));
  const bridge = await BridgeProcess.start({ env: { EDGE_BRIDGE_CONFIG: `${dir}/config.json` } });
  return { bridge, dir };
}

/** Reads `count` messages on a group subscription from the start, then commits the last one. */
async function consumeAndCommit(
  c: TestClient,
  topic: string,
  group: string,
  count: number,
): Promise<Frame[]> {
  const sub = await c.subscribe(topic, { mode: "group", group, from: "earliest", credit: count });
  const got = await c.waitForCount((f) => f.op === "message" && f.sub === sub.sub, count, 30_000);
  const committed = await c.request({ op: "commit", sub: sub.sub, partition: 0, offset: got.at(-1)!.offset });
  assert.equal(committed.op, "committed", JSON.stringify(committed));
  return got;
}

Deno.test("auth: an anonymous connection cannot pass for a principal: clientId, eb-* headers, groups", async (t) => {
  const topic = uniqueTopic("auth-anon");
  await createTopics([{ name: topic, partitions: 1 }]);
  const ALICE_KEY = "ebk_alice-key-for-tests-0123456789abcdef";
  const { bridge, dir } = await mixedBridge(topic, [{ id: "alice", key: ALICE_KEY }]);
  const anon = await connect(bridge.url);
  try {
    assert.equal(anon.welcome?.principal.kind, "anonymous");
    await t.step("an anonymous hello as a principal's clientId is CLIENT_ID_DENIED", async () => {
      for (const clientId of ["alice", "alice.sensor-1", "dev-1"]) {
        const r = await anon.request({ op: "hello", clientId });
        assert.deepEqual([r.op, r.code], ["error", "CLIENT_ID_DENIED"], clientId);
      }
      const ok = await anon.request({ op: "hello", clientId: "anonymous.dev-1" });
      assert.equal(ok.op, "hello_ok");
    });
    await t.step(
      "a publish carrying an eb-* header is BAD_FIELD; records of anonymous name no principal",
      async () => {
        for (const name of ["eb-principal", "EB-Client-Id"]) {
          const r = await anon.publish(topic, "forged", { partition: 0, headers: { [name]: "alice" } });
          assert.deepEqual([r.op, r.code], ["nack", "BAD_FIELD"], name);
          assert.match(r.message, new RegExp(`header "${name}" is reserved`));
        }
        assert.equal(
          (await anon.publish(topic, "honest", { partition: 0, headers: { trace: "t" } })).op,
          "ack",
        );
        const [record] = await kcatRead(topic, brokers(), 1);
        assert.equal(record.payload, "honest", "the forged publishes were not written");
        assert.equal(record.headers["eb-principal"], undefined);
        assert.equal(record.headers["eb-client-id"], "anonymous.dev-1");
        assert.equal(record.headers.trace, "t");
      },
    );
    await t.step("an anonymous group named after a principal's is its own Kafka group", async () => {
      await kcatProduce(topic, ["m1", "m2"], { partition: 0 }); // offsets 1 and 2
      const alice = await connect(bridge.url, ALICE_KEY);
      try {
        assert.equal((await alice.request({ op: "hello", clientId: "alice.reader" })).op, "hello_ok");
        const got = await consumeAndCommit(alice, topic, "g-1", 3);
        assert.deepEqual(got.map((m) => m.offset), ["0", "1", "2"]);
      } finally {
        await alice.close();
      }
      assert.equal(await groupOffset("edge-bridge.alice.g-1", topic), "3");
      // Before: the anonymous group "alice.g-1" was Kafka group edge-bridge.alice.g-1, alice's own, and
      // started at her committed offset 3; now it is a group of its own that starts from the beginning.
      const got = await consumeAndCommit(anon, topic, "alice.g-1", 1);
      assert.deepEqual(got.map((m) => m.offset), ["0"]);
      assert.equal(await groupOffset("edge-bridge.anonymous.alice.g-1", topic), "1");
      assert.equal(await groupOffset("edge-bridge.alice.g-1", topic), "3", "alice's offsets untouched");
    });
  } finally {
    await anon.close();
    assert.equal(await bridge.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: principals whose ids differ by a dot never share clientIds or Kafka groups", async (t) => {
  const topic = uniqueTopic("auth-dots");
  await createTopics([{ name: topic, partitions: 1 }]);
  const KEY_A = "ebk_key-of-a-for-tests-0123456789abcdef";
  const KEY_AB = "ebk_key-of-a-b-for-tests-0123456789abcdef";
  const { bridge, dir } = await mixedBridge(topic, [{ id: "a", key: KEY_A }, { id: "a.b", key: KEY_AB }]);
  const a = await connect(bridge.url, KEY_A);
  const ab = await connect(bridge.url, KEY_AB);
  try {
    assert.deepEqual([a.welcome?.principal.id, ab.welcome?.principal.id], ["a", "a.b"]);
    await t.step("clientIds: a.b's are a%2Eb and a%2Eb.*; a cannot take them", async () => {
      const plain = await ab.request({ op: "hello", clientId: "a.b" });
      assert.deepEqual([plain.op, plain.code], ["error", "CLIENT_ID_DENIED"]);
      assert.match(plain.message, /use "a%2Eb" or "a%2Eb\.<anything>"/);
      assert.equal((await a.request({ op: "hello", clientId: "a%2Eb.s1" })).code, "CLIENT_ID_DENIED");
      assert.equal((await ab.request({ op: "hello", clientId: "a%2Eb.s1" })).op, "hello_ok");
      assert.equal((await a.request({ op: "hello", clientId: "a.s1" })).op, "hello_ok");
    });
    await t.step("group b.x of a and group x of a.b are two Kafka groups", async () => {
      await kcatProduce(topic, ["r0", "r1", "r2"], { partition: 0 });
      await consumeAndCommit(a, topic, "b.x", 1);
      // Before, both were edge-bridge.a.b.x: a.b's subscription would have started at a's offset 1.
      const got = await consumeAndCommit(ab, topic, "x", 2);
      assert.deepEqual(got.map((m) => m.offset), ["0", "1"]);
      assert.equal(await groupOffset("edge-bridge.a.b.x", topic), "1");
      assert.equal(await groupOffset("edge-bridge.a%2Eb.x", topic), "2");
    });
  } finally {
    await Promise.all([a.close(), ab.close()]);
    assert.equal(await bridge.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

/** Connects with request headers Deno's WebSocket lets a client add (a proxy's X-Forwarded-For). */
function connectWith(url: string, headers: Record<string, string>, token?: string, first?: Frame) {
  const protocols = token ? ["edge-bridge.v1", `bearer.${token}`] : [];
  // Deno's WebSocket takes headers in its options (not in the DOM's type).
  const ws = new WebSocket(url, { protocols, headers } as unknown as string[]);
  if (first) ws.addEventListener("open", () => ws.send(JSON.stringify(first)), { once: true });
  return TestClient.connect(url, ws);
}

async function bridgeRss(bridge: BridgeProcess): Promise<number> {
  const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
  return Number(
    text.split("\n").find((l) => l.startsWith('edge_bridge_memory_bytes{kind="rss"}'))!.split(" ")[1],
  );
}

Deno.test("auth: by default (loopback) a connection through a proxy is not anonymous; a local one is", async () => {
  const bridge = await BridgeProcess.start();
  try {
    const hello = { op: "hello", clientId: "x" };
    const proxyHeaders: Record<string, string>[] = [
      { "X-Forwarded-For": "203.0.113.9" },
      { "X-Real-IP": "203.0.113.9" },
      { "Forwarded": "for=203.0.113.9;proto=https" },
    ];
    for (const header of proxyHeaders) {
      const proxied = await connectWith(bridge.url, header, undefined, hello);
      assert.deepEqual(await refusal(proxied), ["AUTH_REQUIRED", 4401], Object.keys(header)[0]);
    }
    const local = await connectWith(bridge.url, {});
    assert.deepEqual(local.welcome?.principal, { id: "anonymous", kind: "anonymous" });
    await local.close();
    const warned = bridge.logs(/may publish, subscribe, groups on "\*".*auth\.anonymous: disabled/);
    assert.equal(warned.length, 1, "warned once at start");
    assert.equal(warned[0].level, "warn");
  } finally {
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("auth: a flood of bad API keys stays bounded; failures are limited per client address", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "eb-auth-flood-" });
  const GOOD = "person.chosen-words";
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      auth: {
        anonymous: "disabled",
        apiKeys: [{ id: "person", hash: await hashApiKey("chosen-words", "scrypt"), publish: ["*"] }],
      },
    }),
  );
  const bridge = await BridgeProcess.start({ env: { EDGE_BRIDGE_CONFIG: `${dir}/config.json` } });
  try {
    await t.step(
      "3 x 256 bad keys at once: each refused (invalid or busy), memory bounded, then served",
      async () => {
        const before = await bridgeRss(bridge);
        const codes = new Map<string, number>();
        for (let round = 0; round < 3; round++) {
          // From loopback without a proxy header: not rate-limited, so only the scrypt bound holds the cost.
          const clients = await Promise.all(
            Array.from({ length: 256 }, (_, i) => connect(bridge.url, `person.wrong-${round}-${i}`)),
          );
          for (const [code, close] of await Promise.all(clients.map(refusal))) {
            assert.equal(close, 4401);
            codes.set(code, (codes.get(code) ?? 0) + 1);
          }
        }
        const grownMB = ((await bridgeRss(bridge)) - before) / 1e6;
        console.log(`codes ${JSON.stringify(Object.fromEntries(codes))}; RSS grew ${grownMB.toFixed(1)} MB`);
        assert.deepEqual(
          [...codes.keys()].filter((c) => c !== "AUTH_INVALID" && c !== "AUTH_UNAVAILABLE"),
          [],
        );
        // Every scrypt run at once (before the bound), 128 bad keys took the RSS to 751 MB. Two at a time
        // take 32 MiB; the allocator keeps some freed scrypt memory per thread, hence the margin.
        assert.ok(grownMB < 300, `RSS grew ${grownMB.toFixed(1)} MB`);
        const good = await connect(bridge.url, GOOD);
        assert.deepEqual(good.welcome?.principal, { id: "person", kind: "api-key" });
        await good.close();
      },
    );
    await t.step(
      "behind a proxy: the client it names is refused AUTH_RATE_LIMITED after 10 failures",
      async () => {
        const from = (ip: string) => ({ "X-Forwarded-For": ip });
        for (let i = 0; i < 10; i++) {
          const c = await connectWith(bridge.url, from("203.0.113.7"), `person.wrong-${i}`);
          assert.deepEqual(await refusal(c), ["AUTH_INVALID", 4401], `attempt ${i + 1}`);
        }
        const limited = await connectWith(bridge.url, from("203.0.113.7"), GOOD);
        assert.deepEqual(await refusal(limited), ["AUTH_RATE_LIMITED", 4401], "even the good key, unchecked");
        const error = limited.frames.find((f) => f.op === "error")!;
        assert.equal(error.retryable, true);
        assert.match(
          error.message,
          /too many failed authentications from 203\.0\.113\.7; try again in \d+ s/,
        );
        const other = await connectWith(bridge.url, from("203.0.113.8"), GOOD);
        assert.equal(other.welcome?.principal.id, "person", "another client of the proxy is served");
        await other.close();
      },
    );
  } finally {
    assert.equal(await bridge.stop(), 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: the default deny list refuses internal topics that exist: connect-*, _schemas, __*", async () => {
  // Created first, so that it is the topic policy that refuses them, not a missing topic.
  await createTopics([{ name: "connect-configs" }, { name: "_schemas" }]);
  const schemasBefore = (await kcatRead("_schemas")).length;
  const bridge = await BridgeProcess.start(); // defaults: anonymous on loopback, allowed everything else
  const c = await bridge.connect();
  try {
    assert.equal(c.welcome?.principal.kind, "anonymous");
    const sub = await c.request({ op: "subscribe", sub: "cfg", topic: "connect-configs", from: "earliest" });
    assert.deepEqual([sub.op, sub.code, sub.sub], ["error", "TOPIC_DENIED", "cfg"]);
    const offsets = await c.request({ op: "subscribe", sub: "co", topic: "__consumer_offsets" });
    assert.deepEqual([offsets.op, offsets.code], ["error", "TOPIC_DENIED"]);
    const pub = await c.publish("_schemas", '{"schema":"forged"}');
    assert.deepEqual([pub.op, pub.code], ["nack", "TOPIC_DENIED"]);
    const allowed = uniqueTopic("deny-control");
    await createTopics([{ name: allowed }]);
    assert.equal((await c.publish(allowed, "fine")).op, "ack", "an ordinary topic is served on this bridge");
    assert.equal((await kcatRead("_schemas")).length, schemasBefore, "nothing reached _schemas");
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("auth: a refreshed token that allows less ends the subscriptions it no longer allows", async () => {
  const s = await setUp();
  const group = `g-${crypto.randomUUID().slice(0, 8)}`;
  const sign = (p: Parameters<typeof perms>[0], sub = "alice") =>
    s.hs.sign({ sub, ...perms(p) }, { expiresIn: "10m", audience: AUDIENCE });
  const c = await connect(s.bridge.url, await sign({ subscribe: [s.topic, s.other], groups: ["g-*"] }));
  try {
    const kept = await c.subscribe(s.topic, { from: "latest", credit: 10 });
    const other = await c.subscribe(s.other, { from: "latest" });
    const grouped = await c.subscribe(s.topic, { mode: "group", group, from: "latest" });

    const refreshed = await c.request({ op: "auth", token: await sign({ subscribe: [s.topic] }) });
    assert.deepEqual([refreshed.op, refreshed.principal], ["auth_ok", "alice"]);
    const ended = (sub: string) =>
      c.waitFor((f) => f.op === "unsubscribed" && f.sub === sub, 20_000, `unsubscribed ${sub}`);
    const [endedOther, endedGroup] = await Promise.all([ended(other.sub), ended(grouped.sub)]);
    assert.match(endedOther.reason, /may not subscribe to .*no longer allows/);
    assert.match(endedGroup.reason, /may not join group .*no longer allows/);
    const errorOf = (sub: string) => c.frames.find((f) => f.op === "error" && f.sub === sub);
    assert.equal(errorOf(other.sub)?.code, "SUBSCRIBE_DENIED");
    assert.equal(errorOf(grouped.sub)?.code, "GROUP_DENIED");
    assert.equal(c.frames.indexOf(errorOf(other.sub)!) < c.frames.indexOf(endedOther), true, "error first");
    assert.equal(errorOf(kept.sub), undefined);

    // The subscription still allowed goes on, and a refresh for someone else changes nothing.
    const bob = await c.request({ op: "auth", token: await sign({ subscribe: ["*"] }, "bob") });
    assert.deepEqual([bob.op, bob.code], ["error", "AUTH_CLAIMS"]);
    await kcatProduce(s.topic, ["after refresh"], { partition: 0 });
    const got = await c.waitFor((f) => f.op === "message" && f.sub === kept.sub, 20_000);
    assert.equal(got.value, "after refresh");
    const again = await c.request({ op: "subscribe", sub: "again", topic: s.other, from: "latest" });
    assert.equal(again.code, "SUBSCRIBE_DENIED", "the narrower token applies to new subscriptions too");
    assert.equal(s.bridge.logs(/may not subscribe/).filter((l) => l.level === "info").length, 1);
  } finally {
    await c.close();
    assert.equal(await s.bridge.stop(), 0);
    await Deno.remove(s.dir, { recursive: true });
  }
});
