import assert from "node:assert/strict";
import { Backoff } from "./backoff.ts";
import { PublishError } from "./errors.ts";
import type { InboundFrame } from "./link.ts";
import { Outbox } from "./outbox.ts";
import { type PublishAck, Publisher } from "./publisher.ts";

const LIMITS = { maxFrameBytes: 1024, maxInflightPublishes: 2, maxSubscriptions: 8, maxCredit: 100 };

/** A publisher over a fake link: `open` decides whether a link is up, `wire` holds what was sent. */
function harness(opts: { open?: boolean; maxFrameBytes?: number } = {}) {
  const wire: Record<string, unknown>[] = [];
  const timers: Array<() => void> = [];
  const epochs: number[] = [];
  const logs: string[] = [];
  const link = { open: opts.open ?? true, answered: 0 };
  const publisher = new Publisher(new Outbox(), new Backoff({ initialMs: 10, maxMs: 10 }), {
    limits: () =>
      link.open ? { ...LIMITS, maxFrameBytes: opts.maxFrameBytes ?? LIMITS.maxFrameBytes } : undefined,
    send: (text) => link.open && wire.push(JSON.parse(text)) > 0,
    answered: () => void link.answered++,
    sawEpoch: (epoch) => void epochs.push(epoch),
    timer: (_ms, fn) => void timers.push(fn),
    log: (_level, message) => void logs.push(message),
  });
  const ack = (seq: number, offset = String(seq)) =>
    publisher.handle(
      { op: "ack", id: `p${seq}`, topic: "t", partition: 0, offset, epoch: 4 } as InboundFrame,
    );
  const nack = (seq: number, code: string, retryable?: boolean) =>
    publisher.handle({ op: "nack", id: `p${seq}`, code, message: "m", retryable } as InboundFrame);
  return { publisher, wire, timers, epochs, logs, link, ack, nack };
}

Deno.test("publisher: bad publishes are refused with a clear error and nothing is queued", async () => {
  const { publisher, wire } = harness();
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  const refusals: Array<[Promise<PublishAck>, RegExp]> = [
    [publisher.publish("", "x"), /topic must be a non-empty string/],
    [publisher.publish("t", undefined), /value is undefined/],
    [publisher.publish("t", { a: 1 }, { encoding: "utf8" }), /must be a string with encoding "utf8"/],
    [publisher.publish("t", cyclic), /cannot be written as JSON/],
  ];
  for (const [p, message] of refusals) {
    await assert.rejects(p, (e: Error) => e instanceof TypeError && message.test(e.message));
  }
  assert.equal(publisher.pending, 0);
  assert.equal(wire.length, 0);
});

Deno.test("publisher: sends up to the bridge's in-flight limit, in seq order, with the acked floor", async () => {
  const { publisher, wire, link, ack, epochs } = harness({ open: false });
  const acks = [publisher.publish("t", "a"), publisher.publish("t", { n: 2 }), publisher.publish("t", "c")];
  assert.equal(publisher.pending, 3);
  assert.equal(wire.length, 0, "no link: queued");
  link.open = true;
  assert.equal(publisher.pump(), 0, "first sends are not resends");
  assert.deepEqual(wire.map((f) => [f.seq, f.encoding, f.acked]), [[1, "utf8", undefined], [
    2,
    "json",
    undefined,
  ]]);
  assert.equal(ack(1), true);
  assert.deepEqual(await acks[0], {
    topic: "t",
    partition: 0,
    offset: "1",
    epoch: 4,
    duplicate: false,
    seq: 1,
  });
  assert.deepEqual(wire.map((f) => f.seq), [1, 2, 3], "an ack makes room for the next");
  assert.equal(wire[2].acked, 1, "the next frame says what is acked");
  assert.deepEqual(epochs, [4]);
  assert.equal(ack(99), false, "an ack for no publish of this client is not handled");
  const drained = publisher.drained();
  ack(2);
  ack(3);
  await drained;
  assert.equal(publisher.pending, 0);
});

Deno.test("publisher: retryable refusals are resent together after one delay; KAFKA_TIMEOUT marks maybe-written", async () => {
  const { publisher, wire, timers, nack, ack, link } = harness();
  const first = publisher.publish("t", "a");
  publisher.publish("t", "b");
  nack(1, "KAFKA_TIMEOUT");
  nack(2, "KAFKA_UNAVAILABLE");
  assert.equal(timers.length, 1, "one resend scheduled for both");
  assert.equal(link.answered, 2);
  timers.shift()!();
  assert.deepEqual(wire.map((f) => f.seq), [1, 2, 1, 2], "both resent, with their own seqs");
  nack(1, "TOPIC_NOT_ALLOWED");
  await assert.rejects(first, (e: Error) => {
    assert.ok(e instanceof PublishError);
    assert.equal(e.code, "TOPIC_NOT_ALLOWED");
    assert.equal(e.maybeWritten, true, "an earlier attempt timed out in Kafka: it may be there");
    return true;
  });
  ack(2);
  assert.equal(publisher.pending, 0);
});

Deno.test("publisher: an unknown code is retried only when the bridge says it is retryable", async () => {
  const { publisher, timers, nack } = harness();
  const later = publisher.publish("t", "a");
  nack(1, "SOMETHING_NEW", true);
  assert.equal(timers.length, 1);
  nack(1, "SOMETHING_ELSE", false);
  await assert.rejects(
    later,
    (e: Error) => e instanceof PublishError && (e.code as string) === "SOMETHING_ELSE",
  );
});

Deno.test("publisher: a frame over the bridge's limit is refused at send, and the rest still go", async () => {
  const { publisher, wire, ack } = harness({ maxFrameBytes: 200 });
  const big = publisher.publish("t", "x".repeat(300));
  const small = publisher.publish("t", "ok");
  await assert.rejects(
    big,
    (e: Error) =>
      e instanceof PublishError && e.code === "FRAME_TOO_LARGE" && /at most 200 bytes/.test(e.message),
  );
  assert.deepEqual(wire.map((f) => f.seq), [2]);
  assert.equal(publisher.pending, 1);
  ack(2);
  assert.equal((await small).seq, 2);
});

Deno.test("publisher: a dropped link resends what was on it; closing refuses what is left, saying whether it may be written", async () => {
  const { publisher, wire, timers, nack, link } = harness();
  const refused = publisher.publish("t", "a");
  nack(1, "KAFKA_UNAVAILABLE"); // certainly not written
  assert.equal(timers.length, 1);
  link.open = false;
  publisher.linkLost(); // the client clears the link's timers with it
  const inFlight = publisher.publish("t", "b");
  link.open = true;
  assert.equal(publisher.pump(), 1, "seq 1 goes again (a resend), seq 2 for the first time");
  nack(1, "KAFKA_UNAVAILABLE");
  assert.equal(timers.length, 2, "the resend that died with the link is scheduled again");
  link.open = false;
  publisher.linkLost(); // seq 2 was on the wire, unanswered
  const neverSent = publisher.publish("t", "c");
  publisher.refuseUnanswered();
  const outcome = async (p: Promise<PublishAck>) => {
    const e = await p.then(() => undefined, (e) => e);
    assert.ok(e instanceof PublishError && e.code === "CLIENT_CLOSED", String(e));
    return [e.maybeWritten, /it may have been written/.test(e.message)];
  };
  assert.deepEqual(await outcome(refused), [false, false], "refused as not written each time");
  assert.deepEqual(await outcome(inFlight), [true, true], "lost on the wire: it may be in Kafka");
  assert.deepEqual(await outcome(neverSent), [false, false]);
  assert.equal(publisher.pending, 0);
  assert.deepEqual(wire.map((f) => f.seq), [1, 1, 2]);
});

Deno.test("publisher: a link that cannot take more stops the sending; the rest go at the next pump", async () => {
  const sent: number[] = [];
  let room = 1;
  const publisher = new Publisher(new Outbox(), new Backoff(), {
    limits: () => ({ ...LIMITS, maxInflightPublishes: 10 }),
    send: (text) => room-- > 0 && sent.push(JSON.parse(text).seq) > 0,
    answered: () => {},
    sawEpoch: () => {},
    timer: () => {},
    log: () => {},
  });
  const acks = [publisher.publish("t", "a"), publisher.publish("t", "b"), publisher.publish("t", "c")];
  assert.deepEqual(sent, [1], "the second send was refused: nothing after it is tried");
  room = 5;
  assert.equal(publisher.pump(), 0, "2 and 3 go for the first time, in order");
  assert.deepEqual(sent, [1, 2, 3]);
  for (const seq of [1, 2, 3]) {
    publisher.handle(
      { op: "ack", id: `p${seq}`, topic: "t", partition: 0, offset: "0", epoch: 1 } as InboundFrame,
    );
  }
  assert.deepEqual((await Promise.all(acks)).map((a) => a.seq), [1, 2, 3]);
});
