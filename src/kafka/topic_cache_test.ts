import assert from "node:assert/strict";
import { TopicCache } from "./topic_cache.ts";

function setup(maxEntries = 3) {
  let now = 0;
  const calls: string[] = [];
  const resolvers = new Map<string, (v: number | null) => void>();
  const cache = new TopicCache<number>(
    (name) => {
      calls.push(name);
      return new Promise((r) => resolvers.set(name, r));
    },
    { maxEntries, ttlMs: 1000, negativeTtlMs: 100, now: () => now },
  );
  return {
    cache,
    calls,
    answer: async (name: string, v: number | null) => {
      resolvers.get(name)!(v);
      await Promise.resolve();
      await Promise.resolve();
    },
    advance: (ms: number) => (now += ms),
  };
}

Deno.test("topic cache: callers of one name share one lookup, and a hit is synchronous", async () => {
  const t = setup();
  const a = t.cache.get("orders"), b = t.cache.get("orders");
  assert.deepEqual(t.calls, ["orders"]);
  assert.deepEqual(t.cache.peek("orders"), undefined);
  await t.answer("orders", 3);
  assert.deepEqual(await a, 3);
  assert.deepEqual(await b, 3);
  assert.deepEqual(t.cache.peek("orders"), 3);
  assert.deepEqual(await t.cache.get("orders"), 3);
  assert.deepEqual(t.calls, ["orders"]);
});

Deno.test("topic cache: different names are looked up concurrently", () => {
  const t = setup();
  void t.cache.get("a");
  void t.cache.get("b");
  assert.deepEqual(t.calls, ["a", "b"]);
});

Deno.test("topic cache: 'does not exist' expires sooner than a found topic", async () => {
  const t = setup();
  void t.cache.get("gone");
  void t.cache.get("here");
  await t.answer("gone", null);
  await t.answer("here", 1);
  assert.deepEqual(t.cache.peek("gone"), null);
  t.advance(150);
  assert.deepEqual(t.cache.peek("gone"), undefined);
  assert.deepEqual(t.cache.peek("here"), 1);
  t.advance(2100);
  assert.deepEqual(t.cache.peek("here"), undefined, "gone after twice its TTL");
});

Deno.test("topic cache: an expired topic is served while one lookup refreshes it", async () => {
  const t = setup();
  void t.cache.get("busy");
  await t.answer("busy", 3);
  t.advance(1001);
  assert.deepEqual(t.cache.peek("busy"), 3, "stale, still served");
  assert.deepEqual(t.cache.peek("busy"), 3);
  assert.deepEqual(t.calls, ["busy", "busy"], "one refresh, not one per caller");
  await t.answer("busy", 6);
  t.advance(500);
  assert.deepEqual(t.cache.peek("busy"), 6, "the refreshed answer, fresh again");
});

Deno.test("topic cache: ttlFor shortens the life of some answers", async () => {
  let now = 0;
  const lookups: string[] = [];
  const cache = new TopicCache<number>((n) => {
    lookups.push(n);
    return Promise.resolve(n === "guessed" ? -1 : 1);
  }, {
    maxEntries: 10,
    ttlMs: 1000,
    negativeTtlMs: 100,
    ttlFor: (v) => v < 0 ? 50 : undefined,
    now: () => now,
  });
  await cache.get("guessed");
  await cache.get("known");
  now = 60;
  assert.equal(cache.peek("known"), 1);
  assert.equal(cache.peek("guessed"), -1, "served while it is read again");
  assert.deepEqual(lookups, ["guessed", "known", "guessed"]);
});

Deno.test("topic cache: bounded; an entry used since it was stored outlives unused ones", async () => {
  const t = setup(3);
  for (const n of ["a", "b", "c"]) {
    void t.cache.get(n);
    await t.answer(n, 1);
  }
  t.cache.peek("a"); // a is now the most recently used
  void t.cache.get("d");
  await t.answer("d", 1);
  assert.deepEqual(t.cache.size, 3);
  assert.deepEqual(t.cache.peek("b"), undefined);
  assert.deepEqual(t.cache.peek("a"), 1);
  assert.deepEqual(t.cache.peek("d"), 1);
});

Deno.test("topic cache: a failed lookup is not cached, and the next call asks again", async () => {
  let n = 0;
  const cache = new TopicCache<number>(
    () => ++n === 1 ? Promise.reject(new Error("down")) : Promise.resolve(7),
    { maxEntries: 10, ttlMs: 1000, negativeTtlMs: 100 },
  );
  let failed = false;
  await cache.get("x").catch(() => (failed = true));
  assert.deepEqual(failed, true);
  assert.deepEqual(await cache.get("x"), 7);
  assert.deepEqual(n, 2);
});
