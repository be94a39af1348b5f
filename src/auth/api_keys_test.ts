import assert from "node:assert/strict";
import { ApiKeyStore, generateApiKey, hashApiKey } from "./api_keys.ts";

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
  assert.equal((await store.find(b))?.id, "b");
  assert.equal((await store.find(b))?.id, "b", "found again (from the cache of matches)");
  assert.equal(await store.find(a + "x"), undefined);
  assert.equal(await store.find("a key someone chose "), undefined);
});
