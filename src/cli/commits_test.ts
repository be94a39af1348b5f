import assert from "node:assert/strict";
import { LatestCommits } from "./commits.ts";

type M = { partition: number; offset: string };

function fakeCommit() {
  const calls: { m: M; settle: PromiseWithResolvers<void> }[] = [];
  const commit = (m: M) => {
    const settle = Promise.withResolvers<void>();
    calls.push({ m, settle });
    return settle.promise;
  };
  return { calls, commit };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("LatestCommits: one commit in flight per partition; the latest waiting one follows it", async () => {
  const { calls, commit } = fakeCommit();
  const c = new LatestCommits<M>(commit, () => assert.fail("no error expected"));
  c.add({ partition: 0, offset: "1" });
  c.add({ partition: 1, offset: "1" });
  c.add({ partition: 0, offset: "2" });
  c.add({ partition: 0, offset: "3" });
  assert.deepEqual(calls.map((x) => `${x.m.partition}@${x.m.offset}`), ["0@1", "1@1"]);
  assert.equal(c.idle, false);
  calls[0].settle.resolve();
  await tick();
  assert.deepEqual(
    calls.map((x) => `${x.m.partition}@${x.m.offset}`),
    ["0@1", "1@1", "0@3"],
    "2 is covered by 3",
  );
  calls[1].settle.resolve();
  calls[2].settle.resolve();
  await c.settled(1000);
  assert.equal(c.idle, true);
});

Deno.test("LatestCommits: a failed commit is reported and the next one still goes out", async () => {
  const { calls, commit } = fakeCommit();
  const errors: string[] = [];
  const c = new LatestCommits<M>(commit, (m, e) => errors.push(`${m.offset}: ${e.message}`));
  c.add({ partition: 0, offset: "1" });
  c.add({ partition: 0, offset: "2" });
  calls[0].settle.reject(new Error("rebalanced"));
  await tick();
  assert.deepEqual(errors, ["1: rebalanced"]);
  assert.equal(calls.length, 2);
  calls[1].settle.resolve();
  await c.settled(1000);
  assert.equal(c.idle, true);
});

Deno.test("LatestCommits: settled() gives up after its timeout", async () => {
  const { calls, commit } = fakeCommit();
  const c = new LatestCommits<M>(commit, () => {});
  c.add({ partition: 0, offset: "1" });
  await c.settled(20);
  assert.equal(c.idle, false);
  calls[0].settle.resolve();
  await c.settled(1000);
  assert.equal(c.idle, true);
});
