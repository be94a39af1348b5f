import assert from "node:assert/strict";
import { OutboxFullError } from "./errors.ts";
import { Outbox, type OutgoingPublish } from "./outbox.ts";

const noop = { resolve() {}, reject() {} };
const frame = (seq: number): OutgoingPublish => ({
  op: "publish",
  id: `p${seq}`,
  topic: "t",
  value: "v",
  encoding: "utf8",
  seq,
});
function fill(box: Outbox, n: number, bytes = 10): void {
  for (let i = 0; i < n; i++) box.add(frame(box.nextSeq), bytes, noop);
}

Deno.test("Outbox: full by count, with a clear error and no seq used", () => {
  const box = new Outbox({ maxMessages: 3 });
  fill(box, 3);
  assert.throws(
    () => box.add(frame(4), 10, noop),
    (e) =>
      e instanceof OutboxFullError && e.count === 3 &&
      /3 unanswered publishes of 30 bytes.*3 messages/.test(e.message),
  );
  assert.equal(box.nextSeq, 4);
  box.remove(1);
  box.add(frame(4), 10, noop);
  assert.equal(box.size, 3);
});

Deno.test("Outbox: full by bytes; freed bytes make room again", () => {
  const box = new Outbox({ maxBytes: 100 });
  box.add(frame(1), 60, noop);
  assert.throws(() => box.add(frame(2), 41, noop), /60 bytes.*100 bytes; this publish needs 41 bytes/);
  box.add(frame(2), 40, noop);
  assert.equal(box.bytes, 100);
  box.remove(1);
  assert.equal(box.bytes, 40);
  box.add(frame(3), 60, noop);
});

Deno.test("Outbox: a single record larger than maxBytes is refused", () => {
  const box = new Outbox({ maxBytes: 100 });
  assert.throws(() => box.add(frame(1), 101, noop), OutboxFullError);
});

Deno.test("Outbox: ackedFloor is the lowest held seq minus one, or the last seq when empty", () => {
  const box = new Outbox();
  assert.equal(box.ackedFloor(), 0);
  fill(box, 5);
  assert.equal(box.ackedFloor(), 0);
  box.remove(2); // answered out of order: 1 is still open
  assert.equal(box.ackedFloor(), 0);
  box.remove(1);
  assert.equal(box.ackedFloor(), 2);
  box.remove(4);
  assert.equal(box.ackedFloor(), 2);
  box.remove(3);
  assert.equal(box.ackedFloor(), 4);
  box.remove(5);
  assert.equal(box.ackedFloor(), 5);
  fill(box, 1);
  assert.equal(box.ackedFloor(), 5); // seq 6 held
});

Deno.test("Outbox: sendable respects the in-flight limit, in seq order, skipping held ones", () => {
  const box = new Outbox();
  fill(box, 5);
  const first = box.sendable(2);
  assert.deepEqual(first.map((e) => e.seq), [1, 2]);
  first.forEach((e) => (e.onWire = true));
  assert.deepEqual(box.sendable(2), []);
  box.remove(1);
  box.get(3)!.held = true;
  assert.deepEqual(box.sendable(2).map((e) => e.seq), [4]);
  box.release();
  assert.deepEqual(box.sendable(3).map((e) => e.seq), [3, 4]);
});

Deno.test("Outbox: a lost link marks what was on the wire as maybe written", () => {
  const box = new Outbox();
  fill(box, 3);
  box.get(1)!.onWire = true;
  box.linkLost();
  assert.equal(box.get(1)!.maybeWritten, true);
  assert.equal(box.get(2)!.maybeWritten, false);
  assert.equal(box.inflight, 0);
  assert.deepEqual(box.sendable(10).map((e) => e.seq), [1, 2, 3]);
});
