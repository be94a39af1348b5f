/**
 * Fuzz: 100,000 malformed and mutated frames over several connections to a real bridge and broker.
 * Every frame must get a documented answer (or none), never INTERNAL; the bridge must not crash,
 * log an error, or grow without bound. The generator is seeded: a failure prints the seed, and
 * FUZZ_SEED=<seed> replays the same frames.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import type { Frame } from "./helpers/ws_client.ts";

const FRAMES = 100_000;
const CONNECTIONS = 8;
const BATCH = 500;
/** Close codes docs/protocol.md documents; anything else (1006, 1011) is a failure. */
const DOCUMENTED_CLOSES = new Set([1000, 1001, 1009, 1013, 4001, 4003, 4008, 4009, 4401, 4402]);
const ROUNDS = 4;

/** mulberry32: small, fast, and the same sequence for the same seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(seed: number, topic: string) {
  const rand = rng(seed);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)];
  const weird: unknown[] = [
    null,
    true,
    -1,
    0,
    1.5,
    -0,
    1e308,
    2 ** 63,
    "",
    " ",
    "\u0000",
    "\ud800",
    "😀".repeat(50),
    "x".repeat(300),
    [],
    {},
    [1, "a", null],
    { nested: { deep: [1] } },
    "earliest",
    "latest",
    "group",
    "-1",
    "99999999999999999999",
    "__consumer_offsets",
    "../etc",
    "<script>",
  ];
  const base = (): Record<string, unknown> =>
    pick([
      () => ({ op: "publish", id: `p${int(1e6)}`, topic, value: "v".repeat(int(50)), key: `k${int(9)}` }),
      () => ({ op: "publish", id: `p${int(1e6)}`, topic, value: { a: int(9) }, encoding: "json" }),
      () => ({
        op: "publish",
        id: `p${int(1e6)}`,
        topic,
        value: btoa("hi"),
        encoding: "base64",
        seq: 1 + int(9),
      }),
      () => ({
        op: "subscribe",
        id: `s${int(1e6)}`,
        sub: `s${int(20)}`,
        topic,
        from: "latest",
        credit: int(5),
      }),
      () => ({ op: "subscribe", id: `s${int(1e6)}`, topic, mode: "group", group: `fz${int(3)}`, credit: 1 }),
      () => ({ op: "subscribe", id: `s${int(1e6)}`, topic, from: { offsets: { "0": String(int(9)) } } }),
      () => ({ op: "credit", sub: `s${int(20)}`, n: int(100) }),
      () => ({ op: "commit", id: `c${int(1e6)}`, sub: `s${int(20)}`, partition: 0, offset: String(int(9)) }),
      () => ({ op: "unsubscribe", id: `u${int(1e6)}`, sub: `s${int(20)}` }),
      () => ({ op: "hello", id: `h${int(1e6)}`, clientId: `fuzz-${int(5)}`, instance: `i${int(3)}` }),
      () => ({ op: "ping", id: `x${int(1e6)}` }),
      () => ({ op: "auth", id: `a${int(1e6)}`, token: "not.a.jwt" }),
    ])();
  const mutateObject = (o: Record<string, unknown>): string => {
    const keys = Object.keys(o);
    switch (int(6)) {
      case 0: // a field's value replaced by something strange
        o[pick(keys)] = pick(weird);
        return JSON.stringify(o);
      case 1: // a field removed
        delete o[pick(keys)];
        return JSON.stringify(o);
      case 2: // an unknown or dangerous field added
        Object.defineProperty(o, pick(["__proto__", "constructor", "prototype", "extra", "op ", "OP"]), {
          value: pick(weird),
          enumerable: true,
        });
        return JSON.stringify(o);
      case 3: // a duplicate key, the later one strange
        return JSON.stringify(o).replace(/}$/, `,"op":${JSON.stringify(pick(weird)) ?? "null"}}`);
      case 4: // prototype pollution in raw text (JSON.stringify would not keep it)
        return `{"__proto__":{"op":"publish","topic":"${topic}"},"op":"${pick(["ping", "publish", "x"])}"}`;
      default:
        return JSON.stringify(o);
    }
  };
  const mutateText = (s: string): string => {
    switch (int(5)) {
      case 0:
        return s.slice(0, int(s.length)); // truncated
      case 1: { // a character replaced
        const i = int(s.length);
        return s.slice(0, i) + String.fromCharCode(int(0x3000)) + s.slice(i + 1);
      }
      case 2: { // a run duplicated
        const i = int(s.length);
        return s.slice(0, i) + s.slice(i, i + 1 + int(20)).repeat(1 + int(3)) + s.slice(i);
      }
      case 3:
        return s.split("").reverse().join("");
      default:
        return s.replace(/[{}[\]":,]/, pick(["", "{", "]", "\\", '"', ",,"]));
    }
  };
  /** One frame to send: text, or bytes for a binary frame. */
  return (): string | Uint8Array => {
    switch (int(20)) {
      case 0:
        return crypto.getRandomValues(new Uint8Array(1 + int(200))); // binary
      case 1:
        return "[".repeat(1 + int(5000)) + "]".repeat(int(5000)); // deep nesting
      case 2:
        return "x".repeat(4097 + int(4000)); // over maxFrameBytes (4096), under 4x
      case 3:
        return String.fromCharCode(...Array.from({ length: int(60) }, () => int(0xffff)));
      case 4:
        return pick(["", "null", "42", '"op"', "[]", "{}", '{"op":null}', '{"op":{}}', "1e999", "-"]);
      case 5:
      case 6:
      case 7:
        return JSON.stringify(base()); // valid (or nearly: ids and subs are random)
      case 8:
      case 9:
      case 10:
      case 11:
        return mutateText(JSON.stringify(base()));
      default:
        return mutateObject(base());
    }
  };
}

async function rss(bridge: BridgeProcess): Promise<number> {
  const text = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
  return Number(
    text.split("\n").find((l) => l.startsWith('edge_bridge_memory_bytes{kind="rss"}'))!.split(" ")[1],
  );
}

Deno.test("fuzz: 100,000 malformed and mutated frames: no crash, no INTERNAL, memory bounded", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`fuzz seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
  const topic = uniqueTopic("fuzz");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start({
    set: [
      "server.maxFrameBytes=4096",
      "limits.maxConsumersPerConnection=1",
      "kafka.consumer.sessionTimeoutMs=6000",
    ],
    env: { EDGE_BRIDGE_LOG_LEVEL: "info" },
  });
  const received: Frame[] = [];
  const closes: number[] = [];
  const rssBefore = await rss(bridge);
  const rssAfterRound: number[] = [];
  const started = performance.now();
  const perConnection = FRAMES / CONNECTIONS / ROUNDS;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await Promise.all(Array.from({ length: CONNECTIONS }, async (_, ci) => {
        const next = generator(seed + round * CONNECTIONS + ci, topic);
        let c = await bridge.connect();
        for (let sent = 0, batch = 0; sent < perConnection; batch++) {
          for (let i = 0; i < BATCH && sent < perConnection; i++, sent++) {
            const f = next();
            if (c.ws.readyState === WebSocket.OPEN) c.ws.send(f);
          }
          // Keep pace: the bridge answers in order, so this pong follows every frame before it.
          const sync = `sync-${round}-${ci}-${batch}`;
          try {
            await c.request({ op: "ping", id: sync }, 30_000);
          } catch (e) {
            const closed = c.ws.readyState === WebSocket.CLOSED ? await c.closed : undefined;
            if (!closed) throw e;
            closes.push(closed.code);
            received.push(...c.frames);
            c = await bridge.connect(); // a documented close: carry on with a new connection
          }
        }
        received.push(...c.frames);
        await c.close();
      }));
      rssAfterRound.push(await rss(bridge));
    }
    const seconds = (performance.now() - started) / 1000;
    const rssAfter = rssAfterRound[ROUNDS - 1];
    const internal = received.filter((f) => f.code === "INTERNAL");
    const codes = new Map<string, number>();
    for (const f of received) if (f.code) codes.set(f.code, (codes.get(f.code) ?? 0) + 1);
    console.log(
      `${FRAMES} frames in ${seconds.toFixed(1)} s; ${received.length} frames back; codes ${
        JSON.stringify(Object.fromEntries(codes))
      }; closes ${JSON.stringify(closes)}; RSS ${(rssBefore / 1e6).toFixed(0)} MB, after each round ${
        rssAfterRound.map((r) => (r / 1e6).toFixed(0)).join(", ")
      } MB`,
    );
    assert.deepEqual(internal, [], "no INTERNAL");
    for (const code of closes) assert.ok(DOCUMENTED_CLOSES.has(code), `close code ${code} is documented`);
    assert.ok(received.length > FRAMES / 2, "the frames were read and answered");
    const errors = bridge.logs(/./).filter((l) => Number(l.level) >= 50);
    assert.deepEqual(errors, [], "the bridge logged no error");
    // Bounded: memory levels off instead of growing with the frames sent.
    const lateGrowth = (rssAfter - Math.max(...rssAfterRound.slice(0, 2))) / 1e6;
    assert.ok(lateGrowth < 64, `RSS grew ${lateGrowth.toFixed(0)} MB over the last two rounds`);
    assert.ok((rssAfter - rssBefore) / 1e6 < 256, "RSS bounded");
    const health = await fetch(`${bridge.httpUrl}/healthz`);
    await health.body?.cancel();
    assert.equal(health.status, 200, "still up");
  } finally {
    assert.equal(await bridge.stop(), 0, "a clean exit after the run");
  }
});
