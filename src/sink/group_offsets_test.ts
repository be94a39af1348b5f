import assert from "node:assert/strict";
import { KafkaFailure } from "../kafka/types.ts";
import { answerOffsets, WaitingOffsets } from "./group_offsets.ts";

const at = (partition: number, next: string, groupId = "g") => ({ groupId, topic: "t", partition, next });

Deno.test("group offsets: commits for one partition that wait together go as the highest, and all are answered", async () => {
  const waiting = new WaitingOffsets();
  const answers: string[] = [];
  const commit = (o: ReturnType<typeof at>) =>
    waiting.add(o).then(() => answers.push(`ok ${o.partition}@${o.next}`));
  const done = [
    commit(at(0, "5")),
    commit(at(0, "12")),
    commit(at(0, "9")),
    commit(at(1, "3")),
    commit(at(0, "4", "h")),
  ];
  assert.equal(waiting.size, 3, "per group, topic and partition");
  const taken = waiting.take();
  assert.equal(waiting.size, 0);
  assert.deepEqual(taken.map((o) => [o.offset.groupId, o.offset.partition, o.offset.next]), [
    ["g", 0, "12"],
    ["g", 1, "3"],
    ["h", 0, "4"],
  ]);
  assert.deepEqual(answers, [], "nothing is answered before the transaction is");
  answerOffsets(taken);
  await Promise.all(done);
  assert.equal(answers.length, 5);
});

Deno.test("group offsets: a refused transaction refuses its own commits only; later ones wait for the next", async () => {
  const waiting = new WaitingOffsets();
  const first = waiting.add(at(0, "7"));
  const taken = waiting.take();
  const later = waiting.add(at(0, "8"));
  answerOffsets(taken, new KafkaFailure("rejected", "the group is not ours"));
  await assert.rejects(first, /the group is not ours/);
  assert.equal(waiting.size, 1);
  answerOffsets(waiting.take());
  await later;
});

Deno.test("group offsets: compares offsets as integers beyond 2^53, not as strings", () => {
  const waiting = new WaitingOffsets();
  void waiting.add(at(0, "9007199254740993"));
  void waiting.add(at(0, "10000000000000000000"));
  void waiting.add(at(0, "999"));
  assert.equal(waiting.take()[0].offset.next, "10000000000000000000");
});

Deno.test("group offsets: taking them clears the 'due' mark that made them go before records", () => {
  const waiting = new WaitingOffsets();
  void waiting.add(at(0, "1"));
  waiting.due = true;
  answerOffsets(waiting.take());
  assert.equal(waiting.due, false);
});
