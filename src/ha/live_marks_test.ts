import assert from "node:assert/strict";
import { LiveMarks, OLD_MARK_MS } from "./live_marks.ts";

Deno.test("live marks: the first mark read proves nothing (it may be old); one that advances does", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 7, 40, 1_000); // read at start-up from the compacted log
  assert.equal(marks.activeLive(1_000, 2_000), undefined);
  marks.observe("b", 7, 40, 1_200); // the same mark again: nothing new
  assert.equal(marks.activeLive(1_200, 2_000), undefined);
  marks.observe("b", 7, 41, 1_500);
  assert.deepEqual(marks.activeLive(1_600, 2_000), { node: "b", epoch: 7 });
  assert.equal(marks.activeLive(3_501, 2_000), undefined, "stale once marks stop advancing");
});

Deno.test("live marks: a restarted writer (higher epoch, counter from zero) advances; own marks are ignored", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 7, 90, 0);
  marks.observe("b", 9, 1, 100);
  assert.deepEqual(marks.activeLive(100, 500), { node: "b", epoch: 9 });
  marks.observe("b", 8, 500, 200); // an older activation's mark, read late: no advance
  assert.deepEqual(marks.activeLive(650, 500), undefined);
  const own = new LiveMarks("a");
  own.observe("a", 1, 1, 0);
  own.observe("a", 1, 2, 10);
  assert.equal(own.activeLive(10, 500), undefined);
});

Deno.test("live marks: with several writers the highest epoch is named", () => {
  const marks = new LiveMarks("a");
  for (const [node, epoch] of [["b", 5], ["c", 6]] as const) {
    marks.observe(node, epoch, 1, 0);
    marks.observe(node, epoch, 2, 10);
  }
  assert.deepEqual(marks.activeLive(20, 100), { node: "c", epoch: 6 });
});

Deno.test("live marks: only marks read after a node's heartbeats stopped count (before, it was alone, not cut off)", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 5, 1, 0);
  marks.observe("b", 5, 2, 10); // b marked while it heard nobody (a was down)
  assert.deepEqual(marks.activeLive(20, 1_000), { node: "b", epoch: 5 });
  const lastHeard = 500; // then a came back and heard b until b was killed, at about 500
  assert.equal(marks.activeLive(600, 1_000, () => lastHeard), undefined, "b is dead, not cut off: take over");
  marks.observe("b", 5, 3, 700); // b marks again after its beats stopped coming: cut off, serving
  assert.deepEqual(marks.activeLive(750, 1_000, () => lastHeard), { node: "b", epoch: 5 });
  assert.equal(marks.activeLive(750, 1_000, () => 740), undefined, "heard since: its beats say what it is");
});

Deno.test("live marks: a replayed tail of old marks (a restarted reader) proves nothing, however it advances", () => {
  const marks = new LiveMarks("a");
  for (let seq = 1; seq <= 40; seq++) marks.observe("b", 7, seq, seq, 60_000 - seq * 250); // written a minute ago
  assert.equal(marks.activeLive(50, 2_000), undefined);
  marks.observe("b", 7, 41, 60, 100); // and now a fresh one
  assert.deepEqual(marks.activeLive(60, 2_000), { node: "b", epoch: 7 });
});

Deno.test("live marks: marks that arrive further apart (a slow Kafka link) stretch the window to twice their pace", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 3, 1, 0); // baseline
  marks.observe("b", 3, 2, 1_000);
  marks.observe("b", 3, 3, 4_000); // the live's marks now take 3 s to arrive
  assert.deepEqual(
    marks.activeLive(6_500, 750),
    { node: "b", epoch: 3 },
    "2.5 s after a 3 s gap: still serving",
  );
  assert.equal(marks.activeLive(10_001, 750), undefined, "past twice the gap: gone");
});

Deno.test("live marks: marks read together in one fetch do not hide the pace between fetches", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 3, 1, 0);
  for (const [seq, at] of [[2, 3_000], [3, 3_001], [4, 3_002], [5, 6_000], [6, 6_001]]) {
    marks.observe("b", 3, seq, at);
  }
  assert.deepEqual(
    marks.activeLive(11_000, 750),
    { node: "b", epoch: 3 },
    "the 3 s between fetches is the pace",
  );
  assert.equal(marks.activeLive(12_002, 750), undefined);
});

Deno.test("live marks: a pause, a new epoch, or a time the writer was heard stretches nothing", () => {
  const pause = new LiveMarks("a");
  pause.observe("b", 3, 1, 0);
  pause.observe("b", 3, 2, 100);
  pause.observe("b", 3, 3, 30_100); // 30 s apart: a pause (or a dead live's last word), not a pace
  assert.equal(pause.activeLive(31_001, 750), undefined);

  const restarted = new LiveMarks("a");
  restarted.observe("b", 3, 1, 0);
  restarted.observe("b", 3, 2, 5_000);
  restarted.observe("b", 4, 1, 5_100); // a new activation: its pace starts afresh
  assert.equal(restarted.activeLive(5_851, 750), undefined);

  const heard = new LiveMarks("a");
  heard.observe("b", 3, 1, 0);
  heard.observe("b", 3, 2, 100);
  heard.observe("b", 3, 3, 6_100); // b was heard from 200 to 6_000 and wrote no marks meanwhile
  assert.equal(
    heard.activeLive(6_851, 750, () => 6_000),
    undefined,
    "only advances since b was last heard count",
  );
  assert.deepEqual(
    heard.activeLive(6_851, 750),
    { node: "b", epoch: 3 },
    "(not heard: the 6 s gap is its pace)",
  );
});

Deno.test("live marks: a configured window longer than OLD_MARK_MS is kept (a slow heartbeat configuration)", () => {
  const marks = new LiveMarks("a");
  marks.observe("b", 3, 1, 0);
  marks.observe("b", 3, 2, 10_000);
  assert.deepEqual(marks.activeLive(39_000, 30_000), { node: "b", epoch: 3 }, `beyond ${OLD_MARK_MS} ms`);
  assert.equal(marks.activeLive(40_001, 30_000), undefined);
});
