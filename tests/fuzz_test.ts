/**
 * Fuzz: 100,000 malformed and mutated frames over several connections to a real bridge and broker.
 * Every frame must get a documented answer (or none), never INTERNAL; the bridge must not crash,
 * log an error, or grow without bound. The generator is seeded: a failure prints the seed, and
 * FUZZ_SEED=<seed> replays the same frames.
 */
import assert from "node:assert/strict";
import { hashApiKey } from "../src/auth/api_keys.ts";
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

/** `tokens`: what the generated `auth` frames carry (good and bad tokens, for a bridge that requires one). */
function generator(seed: number, topic: string, tokens: readonly string[] = ["not.a.jwt"]) {
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
      () => ({ op: "auth", id: `a${int(1e6)}`, token: pick(tokens) }),
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
  const next = (): string | Uint8Array => {
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
  /** An `auth` frame with one of the tokens: as it should be, or mutated like the others. */
  const auth = (): string => {
    const frame = { op: "auth", id: `a${int(1e6)}`, token: pick(tokens) };
    switch (int(3)) {
      case 0:
        return JSON.stringify(frame);
      case 1:
        return mutateObject(frame);
      default:
        return mutateText(JSON.stringify(frame));
    }
  };
  return Object.assign(next, { auth, int });
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

/** What a connection may get before it is admitted: one refusal, with one of these codes. */
const PRE_AUTH_CODES = new Set([
  "AUTH_REQUIRED",
  "AUTH_TIMEOUT",
  "AUTH_INVALID",
  "AUTH_EXPIRED",
  "AUTH_CLAIMS",
  "AUTH_REVOKED",
  "AUTH_UNAVAILABLE",
  "AUTH_RATE_LIMITED",
  "PRE_AUTH_LIMIT",
]);
const GOOD_KEY = "ebk_fuzz-key-for-tests-0123456789abcdef";
/** Tokens the handshake may carry (subprotocol characters only): none of them is a key of this bridge. */
const BAD_KEYS = [
  "ebk_fuzz-key-for-tests-0123456789abcdeF",
  "fuzzer.not-the-key",
  "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
  "x",
];

/** One connection of the pre-auth round: the frames it got, and how the bridge closed it. */
class RawConnection {
  readonly frames: Frame[] = [];
  closeCode?: number;
  readonly closed: Promise<void>;

  private constructor(readonly ws: WebSocket) {
    ws.addEventListener("message", (e) => void this.frames.push(JSON.parse(e.data as string)));
    this.closed = new Promise((r) =>
      ws.addEventListener("close", (e) => {
        this.closeCode = e.code;
        r();
      }, { once: true })
    );
  }

  static async open(url: string, token?: string): Promise<RawConnection> {
    const ws = new WebSocket(url, token ? ["edge-bridge.v1", `bearer.${token}`] : []);
    const c = new RawConnection(ws);
    await new Promise<void>((res, rej) => {
      ws.addEventListener("open", () => res(), { once: true });
      ws.addEventListener("error", () => rej(new Error(`cannot connect to ${url}`)), { once: true });
    });
    return c;
  }

  send(frame: string | Uint8Array): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  /** Waits until `pred` holds or the bridge closed the connection; throws past `timeoutMs`. */
  async until(pred: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!pred() && this.closeCode === undefined) {
      if (performance.now() > deadline) {
        throw new Error(
          `no ${what} within ${timeoutMs} ms; last frames ${JSON.stringify(this.frames.slice(-3))}`,
        );
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

Deno.test("fuzz: frames before (or instead of) a token on a bridge that requires one: refused, never served", async () => {
  const seed = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
  console.log(`fuzz (pre-auth) seed ${seed} (FUZZ_SEED=${seed} replays this run)`);
  const topic = uniqueTopic("fuzz-auth");
  await createTopics([{ name: topic, partitions: 2 }]);
  const dir = await Deno.makeTempDir({ prefix: "eb-fuzz-auth-" });
  await Deno.writeTextFile(
    `${dir}/config.json`,
    JSON.stringify({
      auth: {
        anonymous: "disabled",
        timeoutMs: 300,
        apiKeys: [{ id: "fuzzer", hash: await hashApiKey(GOOD_KEY), publish: [topic], subscribe: [topic] }],
      },
    }),
  );
  const bridge = await BridgeProcess.start({
    set: ["server.maxFrameBytes=4096", "limits.maxConsumersPerConnection=1"],
    env: { EDGE_BRIDGE_CONFIG: `${dir}/config.json`, EDGE_BRIDGE_LOG_LEVEL: "info" },
  });
  const FRAMES_PER_WORKER = 3_000;
  const WORKERS = 8;
  const SUB_ROUNDS = 3;
  const rssBefore = await rss(bridge);
  const rssAfterRound: number[] = [];
  const refused: RawConnection[] = [];
  const admitted: RawConnection[] = [];
  const started = performance.now();
  let frames = 0;
  try {
    for (let round = 0; round < SUB_ROUNDS; round++) {
      await Promise.all(Array.from({ length: WORKERS }, async (_, wi) => {
        const next = generator(seed + round * WORKERS + wi, topic, ["not.a.jwt", GOOD_KEY, ...BAD_KEYS]);
        let sent = 0;
        while (sent < FRAMES_PER_WORKER) {
          // How this connection starts: no token at all, a token in the handshake (good or not), or an
          // auth frame (good, or mutated) first; then a burst of fuzz that arrives before any answer.
          const kind = next.int(5);
          const handshake = kind === 1
            ? GOOD_KEY
            : kind === 2
            ? BAD_KEYS[next.int(BAD_KEYS.length)]
            : undefined;
          const c = await RawConnection.open(bridge.url, handshake);
          if (kind === 3) c.send(JSON.stringify({ op: "auth", token: GOOD_KEY }));
          if (kind === 4) c.send(next.auth());
          const burst = 1 + next.int(40);
          for (let i = 0; i < burst; i++) c.send(next());
          sent += burst;
          // Every connection is admitted (welcome) or refused and closed, within auth.timeoutMs.
          await c.until(() => c.frames.some((f) => f.op === "welcome"), "welcome or close");
          if (!c.frames.some((f) => f.op === "welcome")) {
            refused.push(c);
            continue;
          }
          // Admitted: more fuzz as the principal, in step with the bridge.
          for (let batch = 0; batch < 2 && c.closeCode === undefined; batch++) {
            for (let i = 0; i < 100; i++) c.send(next());
            sent += 100;
            const sync = `sync-${round}-${wi}-${sent}`;
            c.send(JSON.stringify({ op: "ping", id: sync }));
            await c.until(() => c.frames.some((f) => f.id === sync), `pong ${sync}`);
          }
          if (c.closeCode === undefined) {
            c.ws.close(1000);
            await c.closed;
          }
          admitted.push(c);
        }
        frames += sent;
      }));
      rssAfterRound.push(await rss(bridge));
    }
    const seconds = (performance.now() - started) / 1000;
    const all = [...refused, ...admitted];
    const codes = new Map<string, number>();
    for (const f of all.flatMap((c) => c.frames)) if (f.code) codes.set(f.code, (codes.get(f.code) ?? 0) + 1);
    console.log(
      `${frames} frames on ${all.length} connections (${admitted.length} admitted) in ${
        seconds.toFixed(1)
      } s; ` +
        `codes ${JSON.stringify(Object.fromEntries(codes))}; RSS ${(rssBefore / 1e6).toFixed(0)} MB, ` +
        `after each round ${rssAfterRound.map((r) => (r / 1e6).toFixed(0)).join(", ")} MB`,
    );
    assert.deepEqual(all.flatMap((c) => c.frames).filter((f) => f.code === "INTERNAL"), [], "no INTERNAL");
    for (const c of refused) {
      // Before welcome the bridge sends nothing but its one refusal, then closes 4401.
      assert.equal(c.frames.length, 1, `one frame before the close: ${JSON.stringify(c.frames)}`);
      assert.equal(c.frames[0].op, "error");
      assert.ok(PRE_AUTH_CODES.has(c.frames[0].code), `a refusal code: ${c.frames[0].code}`);
      assert.equal(c.closeCode, 4401, `closed 4401 after ${c.frames[0].code}`);
    }
    for (const c of admitted) {
      assert.equal(c.frames[0].op, "welcome", `nothing before welcome: ${JSON.stringify(c.frames[0])}`);
      assert.equal(c.frames[0].principal.id, "fuzzer");
      if (c.closeCode !== 1000) {
        assert.ok(DOCUMENTED_CLOSES.has(c.closeCode!), `close code ${c.closeCode} is documented`);
      }
    }
    // Both sides of the gate were fuzzed.
    assert.ok((codes.get("AUTH_REQUIRED") ?? 0) > 0 && (codes.get("AUTH_INVALID") ?? 0) > 0, "refusals");
    assert.ok(admitted.length > 0, "admissions");
    const errors = bridge.logs(/./).filter((l) => Number(l.level) >= 50);
    assert.deepEqual(errors, [], "the bridge logged no error");
    const lateGrowth = (rssAfterRound.at(-1)! - Math.max(...rssAfterRound.slice(0, 2))) / 1e6;
    assert.ok(lateGrowth < 64, `RSS grew ${lateGrowth.toFixed(0)} MB over the last round`);
    assert.ok((rssAfterRound.at(-1)! - rssBefore) / 1e6 < 256, "RSS bounded");
    const health = await fetch(`${bridge.httpUrl}/healthz`);
    await health.body?.cancel();
    assert.equal(health.status, 200, "still up");
  } finally {
    assert.equal(await bridge.stop(), 0, "a clean exit after the run");
    await Deno.remove(dir, { recursive: true });
  }
});
