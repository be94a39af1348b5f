import assert from "node:assert/strict";
import { ApiKeyStore } from "../auth/api_keys.ts";

const main = new URL("../../main.ts", import.meta.url).pathname;

async function hashKey(args: string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-sys=hostname", main, "hash-key", ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  if (stdin !== undefined) await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("hash-key: hashes the key on stdin; the hash finds that key", async () => {
  const r = await hashKey([], "ebk_from-stdin\n");
  assert.equal(r.code, 0, r.stderr);
  const hash = r.stdout.trim();
  assert.match(hash, /^sha256:[0-9a-f]{64}$/);
  const store = new ApiKeyStore([{ id: "a", hash, revoked: false }]);
  assert.equal((await store.find("ebk_from-stdin"))?.id, "a");
  assert.equal((await store.find("a.ebk_from-stdin"))?.id, "a", "or with its id");
});

Deno.test("hash-key: --scrypt without --id notes on stderr how the key is presented", async () => {
  const r = await hashKey(["--scrypt"], "chosen-words\n");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.trim(), /^scrypt:16384:8:1:[^\s]+$/, "stdout holds the hash only");
  assert.match(r.stderr, /present this key as <id>\.<key>/);
  const store = new ApiKeyStore([{ id: "person", hash: r.stdout.trim(), revoked: false }]);
  assert.equal((await store.find("person.chosen-words"))?.id, "person");
});

Deno.test("hash-key: --generate --scrypt --id prints the key once and a ready entry", async () => {
  const r = await hashKey(["--generate", "--scrypt", "--id", "sensor"]);
  assert.equal(r.code, 0, r.stderr);
  const key = /^key: +(sensor\.ebk_\S+)$/m.exec(r.stdout)![1];
  const hash = /hash: "(scrypt:[^"]+)"/.exec(r.stdout)![1];
  assert.match(r.stdout, /- id: sensor/);
  assert.match(r.stdout, /# clients present the key as sensor\.<key>\n/);
  const store = new ApiKeyStore([{ id: "sensor", hash, revoked: false }]);
  assert.equal((await store.find(key))?.id, "sensor", "the key printed is the one to present");
  assert.equal(await store.find(key.slice("sensor.".length)), undefined, "a scrypt key needs its id");
});

Deno.test("hash-key: no key, or a bad --id, is a usage error (exit 2); --help exits 0", async () => {
  assert.equal((await hashKey([], "")).code, 2);
  assert.match((await hashKey(["--id", "a b"])).stderr, /--id must be/);
  const help = await hashKey(["--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: edge-bridge hash-key/);
});
