import assert from "node:assert/strict";
import { ApiKeyStore, generateApiKey, hashApiKey } from "./api_keys.ts";
import { BoundedConcurrency } from "../limits/concurrency.ts";

Deno.test("api keys: sha256 and scrypt hashes find their key and no other", async () => {
  const a = generateApiKey();
  const b = "a key someone chose";
  assert.match(a, /^ebk_[A-Za-z0-9_-]{43}$/);
  const entries = [
    { id: "a", hash: await hashApiKey(a), revoked: false },
    { id: "b", hash: await hashApiKey(b, "scrypt"), revoked: false },
  ];
  assert.match(entries[0].hash, /^sha256:[0-9a-f]{64}$/);
  assert.match(entries[1].hash, /^scrypt:16384:8:1:/);
  assert.notEqual(await hashApiKey(b, "scrypt"), entries[1].hash, "scrypt hashes are salted");
  const store = new ApiKeyStore(entries);
  assert.equal((await store.find(a))?.id, "a");
  assert.equal((await store.find(`b.${b}`))?.id, "b");
  assert.equal((await store.find(`b.${b}`))?.id, "b", "found again (from the cache of matches)");
  assert.equal(await store.find(a + "x"), undefined);
  assert.equal(await store.find("b.a key someone chose "), undefined);
});

Deno.test("api keys: a key may come as <id>.<key>; a scrypt key must, and only its id's hash is tried", async () => {
  const generated = generateApiKey();
  const chosen = "chosen.with dots";
  const entries = [
    { id: "gen", hash: await hashApiKey(generated), revoked: false },
    { id: "fleet", hash: await hashApiKey("a.fleet key", "scrypt"), revoked: false },
    { id: "fleet.a", hash: await hashApiKey(chosen, "scrypt"), revoked: false },
  ];
  let runs = 0;
  const counting = new BoundedConcurrency(2, 32);
  const run = counting.run.bind(counting);
  counting.run = (work) => (runs++, run(work));
  const store = new ApiKeyStore(entries, counting);
  assert.equal((await store.find(`gen.${generated}`))?.id, "gen", "a sha256 key with its id");
  assert.equal(await store.find(`fleet.${generated}`), undefined, "under another id it is not found");
  assert.equal(runs, 1, "one scrypt run: fleet's hash");
  assert.equal(await store.find(chosen), undefined, "a scrypt key without its id is not checked");
  assert.equal(await store.find("a.fleet key"), undefined);
  assert.equal(runs, 1, "no scrypt run for a key that names no id");
  assert.equal((await store.find(`fleet.a.${chosen}`))?.id, "fleet.a", "the longest id first");
  assert.equal(runs, 2);
  assert.equal((await store.find("fleet.a.fleet key"))?.id, "fleet");
  assert.equal(runs, 4, "fleet.a's hash was tried first, then fleet's");
  assert.equal((await store.find("fleet.a.fleet key"))?.id, "fleet");
  assert.equal(runs, 4, "a key matched once is found again without scrypt");
  assert.deepEqual(store.idsNamedBy(`${"x".repeat(200)}.fleet.key`), [], "ids are at most 100 characters");
});
