import assert from "node:assert/strict";
import { IncarnationStore, UnreadableIncarnationError } from "./incarnation.ts";

const read = (path: string) => JSON.parse(Deno.readTextFileSync(path));

Deno.test("incarnation: higher at every start, the clock only a floor; written before it is used", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sub/incarnation.json`;
  try {
    assert.deepEqual(await new IncarnationStore(path).begin(1000), { incarnation: 1000, peers: {} });
    assert.deepEqual(read(path), { incarnation: 1000, peers: {} });
    assert.equal((await new IncarnationStore(path).begin(1000)).incarnation, 1001, "same millisecond");
    assert.equal((await new IncarnationStore(path).begin(5)).incarnation, 1002, "the clock went back");
    assert.equal((await new IncarnationStore(path).begin(9000.7)).incarnation, 9000, "the clock moved on");
    assert.equal(read(path).incarnation, 9000);
    assert.deepEqual([...Deno.readDirSync(`${dir}/sub`)].map((e) => e.name), ["incarnation.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("incarnation: peers' incarnations are remembered across a restart, only ever upwards", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/incarnation.json`;
  try {
    const store = new IncarnationStore(path);
    await store.begin(100);
    // Several changes at once: written one at a time, and the file ends with all of them.
    await Promise.all([store.remember("a", 7), store.remember("b", 3), store.remember("a", 9)]);
    await store.remember("a", 8); // lower: ignored
    assert.deepEqual(read(path), { incarnation: 100, peers: { a: 9, b: 3 } });
    assert.deepEqual(await new IncarnationStore(path).begin(100), {
      incarnation: 101,
      peers: { a: 9, b: 3 },
    });
    assert.deepEqual(read(path), { incarnation: 101, peers: { a: 9, b: 3 } });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("incarnation: a torn, empty or malformed file stops the node with a clear error", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/incarnation.json`;
  try {
    const cases: [string, RegExp][] = [
      ['{"incarnation":4', /torn or empty/],
      ["", /torn or empty/],
      ["[]", /no incarnation/],
      ['{"incarnation":0,"peers":{}}', /no incarnation/],
      ['{"incarnation":"4","peers":{}}', /no incarnation/],
      ['{"incarnation":4,"peers":[]}', /peers is not an object/],
      ['{"incarnation":4,"peers":{"a":-1}}', /peer a/],
    ];
    for (const [content, why] of cases) {
      Deno.writeTextFileSync(path, content);
      const e = await new IncarnationStore(path).begin(1).then(() => undefined, (e) => e);
      assert.ok(e instanceof UnreadableIncarnationError, `${content}: ${e}`);
      assert.match(e.message, why, content);
      assert.match(e.message, /rather than guess/);
      assert.equal(Deno.readTextFileSync(path), content, "left as it was, for the operator");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
