import assert from "node:assert/strict";
import type { KcatRecord } from "../tests/helpers/kcat.ts";
import type { Sent } from "../tests/helpers/steady_producer.ts";
import { checkConsumer, checkKafka, failures, type ModeResult } from "./soak_checks.ts";

const CLIENT = "soak-client";

function record(partition: number, offset: number, seq: number, epoch: number, node = "a"): KcatRecord {
  return {
    partition,
    offset,
    key: null,
    payload: `soak${seq}:`,
    headers: {
      "eb-client-id": CLIENT,
      "eb-message-id": `${CLIENT}:1:${seq}`,
      "eb-epoch": String(epoch),
      "eb-node": node,
    },
  };
}

function acked(seq: number, partition: number, offset: number, epoch: number): Sent {
  return {
    n: seq,
    value: `soak${seq}:`,
    ack: { topic: "t", partition, offset: String(offset), epoch, duplicate: false, seq },
  };
}

Deno.test("soak checks: every acked record where its ack says, once, epochs rising: nothing to report", () => {
  const records = [record(0, 0, 1, 5), record(0, 1, 2, 5), record(1, 0, 3, 7, "b"), record(0, 2, 4, 7, "b")];
  const sent = [acked(1, 0, 0, 5), acked(2, 0, 1, 5), acked(3, 1, 0, 7), acked(4, 0, 2, 7)];
  assert.deepEqual(checkKafka(records, sent, CLIENT), { lost: [], duplicates: [], stale: [], unacked: 0 });
});

Deno.test("soak checks: an acked record missing, or another in its place, is lost", () => {
  const records = [record(0, 0, 1, 5), record(0, 1, 9, 5)];
  const sent = [acked(1, 0, 0, 5), acked(2, 0, 1, 5), acked(3, 0, 2, 5)];
  const { lost, unacked } = checkKafka(records, sent, CLIENT);
  assert.equal(lost.length, 2);
  assert.match(lost[0], /soak2 .*acked at 0\/1: another record there \(soak9\)/);
  assert.match(lost[1], /soak3 .*acked at 0\/2: no record there/);
  assert.equal(unacked, 0, "0/1 was named by an ack, even if by the wrong one");
});

Deno.test("soak checks: the same record at the right place but with another seq is lost, not found", () => {
  const r = record(0, 0, 1, 5);
  r.headers["eb-message-id"] = `${CLIENT}:1:77`;
  const { lost } = checkKafka([r], [acked(1, 0, 0, 5)], CLIENT);
  assert.match(lost[0], /its headers name soak-client:1:77/);
});

Deno.test("soak checks: a seq written twice is a duplicate; a record no ack named is counted", () => {
  const records = [record(0, 0, 1, 5), record(2, 4, 1, 6, "b"), record(1, 0, 2, 6, "b")];
  const { duplicates, unacked } = checkKafka(records, [acked(1, 0, 0, 5)], CLIENT);
  assert.deepEqual(duplicates, [`${CLIENT} seq 1 at 2/4, first at 0/0`]);
  assert.equal(unacked, 2);
});

Deno.test("soak checks: a lower epoch after a higher one in a partition is a zombie's (stale) write", () => {
  const records = [record(0, 2, 3, 5, "a"), record(0, 0, 1, 5), record(0, 1, 2, 7, "b"), record(1, 0, 4, 5)];
  const { stale } = checkKafka(records, [], CLIENT); // out of order on purpose: checked in offset order
  assert.deepEqual(stale, ["0/2 epoch 5 (node a) after epoch 7 at 0/1 (node b)"]);
  const noEpoch = record(1, 1, 5, 5);
  delete noEpoch.headers["eb-epoch"];
  assert.deepEqual(checkKafka([noEpoch], [], CLIENT).stale, ["1/1 has no eb-epoch header"]);
});

Deno.test("soak checks: the consumer's missed, twice and unknown positions", () => {
  const sent = [acked(1, 0, 0, 5), acked(2, 0, 1, 5), acked(3, 1, 0, 5), { n: 4, value: "soak4:" }];
  const positions = new Map([["0/0", 1], ["1/0", 3], ["2/9", 1]]);
  assert.deepEqual(checkConsumer(positions, sent), { missed: ["0/1"], twice: ["1/0 x3"], unknown: 1 });
});

Deno.test("soak checks: a mode's run passes only with nothing lost, twice, stale, missed, refused or unanswered", () => {
  const clean: ModeResult = {
    mode: "heartbeat",
    cyclesDone: 2,
    errors: [],
    times: [],
    published: 10,
    acked: 10,
    duplicateAcks: 1, // a resend answered from the dedupe log: reported, not a failure
    failedPublishes: [],
    unanswered: 0,
    pauses: 0,
    epochs: 5,
    kafkaRecords: 10,
    perPartition: [10],
    lost: [],
    duplicatesInKafka: [],
    staleEpoch: [],
    unacked: 0,
    consumed: 10,
    consumerMissed: [],
    consumerTwice: [],
    consumerUnknown: 0,
    commits: 10,
    commitsConfirmed: 10,
    commitErrors: [],
    commitsUnanswered: 0,
    heldBack: 0,
  };
  assert.deepEqual(failures(clean), []);
  const cases: [Partial<ModeResult>, RegExp][] = [
    [{ errors: ["b never became live"] }, /did not complete: b never became live/],
    [{ lost: ["soak3 …"] }, /1 acked records lost/],
    [{ duplicatesInKafka: ["x", "y"] }, /2 extra copies in Kafka/],
    [{ staleEpoch: ["0/4 …"] }, /1 stale-epoch records/],
    [{ consumerMissed: ["0/7"] }, /1 acked records the consumer missed/],
    [{ failedPublishes: ["NOT_LIVE"] }, /1 publishes refused/],
    [{ unanswered: 3 }, /3 publishes never answered/],
  ];
  for (const [fault, why] of cases) {
    const out = failures({ ...clean, ...fault });
    assert.equal(out.length, 1, JSON.stringify(fault));
    assert.match(out[0], why);
  }
});
