import assert from "node:assert/strict";
import { EpochStore, readJson, UnreadableStateError, writeJsonAtomic } from "./epoch_store.ts";

Deno.test("epoch store: written, read back, replaced whole; no temp file left", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = new EpochStore(`${dir}/sub/epoch.json`);
    assert.equal(await store.read(), 0, "no file: no epoch yet");
    await store.write(7);
    await store.write(8);
    assert.equal(await store.read(), 8);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["epoch.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("epoch store: a torn or empty file stops the node with a clear error, never epoch 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (
      const [content, why] of [['{"epoch":1', /unreadable \(.*JSON/], ["", /unreadable \(empty\)/]] as const
    ) {
      await Deno.writeTextFile(`${dir}/epoch.json`, content);
      const e = await new EpochStore(`${dir}/epoch.json`).read().then(() => undefined, (e) => e);
      assert.ok(e instanceof UnreadableStateError, String(e));
      assert.match(e.message, why);
      assert.match(e.message, /rather than guess what it held/);
    }
    // Advisory files may count a torn one as absent.
    assert.equal(await readJson(`${dir}/epoch.json`, "absent"), undefined);
    await writeJsonAtomic(`${dir}/epoch.json`, { epoch: 3 });
    assert.equal(await new EpochStore(`${dir}/epoch.json`).read(), 3, "a good write replaces the torn file");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
