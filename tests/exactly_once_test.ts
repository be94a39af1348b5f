/**
 * Exactly-once publishing on the wire (publish `seq`/`acked`), against real bridges and the
 * real broker, checked with kcat: a resend is answered with the first write's position and
 * never written twice, by the same bridge and, in HA, by the node that took over.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { HaCluster } from "./helpers/ha.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import type { Frame, TestClient } from "./helpers/ws_client.ts";

/** The seq of a record published with one: the last part of its eb-message-id (clientId:instance:seq). */
function seqOf(r: { headers: Record<string, string> }): string | undefined {
  return r.headers["eb-message-id"]?.split(":").at(-1);
}

async function hello(c: TestClient, clientId: string, instance = "run-1"): Promise<void> {
  const r = await c.request({ op: "hello", clientId, instance });
  assert.equal(r.op, "hello_ok");
}

function publish(c: TestClient, topic: string, seq: number, extra: Frame = {}): Promise<Frame> {
  return c.publish(topic, `s${seq}`, { seq, ...extra });
}

/**
 * As a client that keeps its promises does (the SDK does this): a retryable nack is not an
 * answer, the same seq goes again. A new live refuses sequenced publishes (KAFKA_UNAVAILABLE,
 * retryable, not written) until it has read the dedupe log back to its barrier.
 */
async function publishUntilAnswered(
  c: TestClient,
  topic: string,
  seq: number,
  extra: Frame = {},
): Promise<Frame> {
  const until = performance.now() + 20_000;
  for (;;) {
    const r = await publish(c, topic, seq, extra);
    if (r.op !== "nack" || !r.retryable || performance.now() > until) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

/** (clientId, seq) of every record, from the headers the bridge adds. */
function sequences(records: { headers: Record<string, string> }[]): string[] {
  return records.map((r) => `${r.headers["eb-client-id"]}#${seqOf(r)}`);
}

Deno.test("exactly-once: a resend on a new connection is acked with its first position, written once", async () => {
  const topic = uniqueTopic("eo");
  await createTopics([{ name: topic, partitions: 2 }]);
  const bridge = await BridgeProcess.start({ set: ["dedupe.windowPerClient=3"] });
  try {
    const c1 = await bridge.connect();
    await hello(c1, "dev-1");
    const first = await Promise.all([1, 2].map((s) => publish(c1, topic, s)));
    for (const a of first) assert.equal(a.op, "ack", JSON.stringify(a));
    assert.ok(first.every((a) => a.duplicate === undefined));
    await c1.close();

    const c2 = await bridge.connect();
    await hello(c2, "dev-1");
    const again = await publish(c2, topic, 2, { acked: 0 });
    assert.equal(again.op, "ack");
    assert.equal(again.duplicate, true);
    assert.deepEqual([again.partition, again.offset], [first[1].partition, first[1].offset]);
    // Another client's seq 1 is its own; so is that of another run (instance) of the same client.
    const c3 = await bridge.connect();
    await hello(c3, "dev-2");
    assert.equal((await publish(c3, topic, 1)).duplicate, undefined);
    const c4 = await bridge.connect();
    await hello(c4, "dev-2", "run-2");
    assert.equal((await publish(c4, topic, 1)).duplicate, undefined, "a new instance starts its own seqs");
    assert.equal((await publish(c4, topic, 1)).duplicate, true);
    await c4.close();

    // A window of 3: seqs 3..6 push seq 2 (and 1) out; a resend of 2 is then unverifiable and
    // written again (at-least-once), and the metric counts it.
    for (const s of [3, 4, 5, 6]) assert.equal((await publish(c2, topic, s)).op, "ack");
    const late = await publish(c2, topic, 2);
    assert.equal(late.op, "ack");
    assert.equal(late.duplicate, undefined, "beyond the window: written again, not claimed a duplicate");
    const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
    assert.match(metrics, /edge_bridge_dedupe_unverifiable_total\{reason="below_window"\} 1/);
    assert.match(metrics, /edge_bridge_dedupe_resends_total\{outcome="duplicate"\} 2/);

    const seqs = sequences(await kcatRead(topic, undefined, 9));
    assert.deepEqual(
      seqs.sort(),
      ["dev-1#1", "dev-1#2", "dev-1#2", "dev-1#3", "dev-1#4", "dev-1#5", "dev-1#6", "dev-2#1", "dev-2#1"]
        .sort(),
      "the in-window resend was not written; the one beyond the window was",
    );
    await Promise.all([c2.close(), c3.close()]);
  } finally {
    await bridge.stop();
  }
});

Deno.test("exactly-once: malformed or misplaced sequence fields are refused with clear errors", async () => {
  const topic = uniqueTopic("eo-bad");
  await createTopics([{ name: topic, partitions: 1 }]);
  const bridge = await BridgeProcess.start();
  try {
    const c = await bridge.connect();
    const noHello = await publish(c, topic, 1);
    assert.equal(noHello.op, "nack");
    assert.equal(noHello.code, "BAD_FIELD");
    assert.match(noHello.message, /needs a "hello"/);
    // A hello without instance is not enough: seqs restart with every run of a client.
    assert.equal((await c.request({ op: "hello", clientId: "dev-bad" })).op, "hello_ok");
    const noInstance = await publish(c, topic, 1);
    assert.equal(noInstance.code, "BAD_FIELD");
    assert.match(noInstance.message, /an instance \(a random id for this run/);
    await hello(c, "dev-bad");
    const cases: [Frame, RegExp][] = [
      [{ seq: 0 }, /"seq" must be an integer from 1/],
      [{ seq: "1" }, /"seq" must be an integer/],
      [{ seq: 1.5 }, /"seq" must be an integer/],
      [{ seq: 2, acked: 2 }, /"acked" \(2\) must be below "seq" \(2\)/],
      [{ seq: 2, acked: -1 }, /"acked" must be an integer from 0/],
      [{ acked: 1 }, /"acked" needs "seq"/],
    ];
    for (const [fields, why] of cases) {
      const r = await c.publish(topic, "x", fields);
      assert.equal(r.op, "nack", JSON.stringify(fields));
      assert.equal(r.code, "BAD_FIELD");
      assert.match(r.message, why);
    }
    assert.equal((await kcatRead(topic)).length, 0, "nothing refused was written");
    await c.close();
  } finally {
    await bridge.stop();
  }
});

Deno.test("exactly-once: a resent seq is authorised first, and one reused for another topic is SEQ_REUSED", async () => {
  const [topic, other, denied] = [uniqueTopic("eo-a"), uniqueTopic("eo-b"), uniqueTopic("eo-denied")];
  await createTopics([{ name: topic, partitions: 1 }, { name: other, partitions: 1 }, {
    name: denied,
    partitions: 1,
  }]);
  const bridge = await BridgeProcess.start({
    set: [`auth.anonymousPermissions.publish=${topic},${other}`],
  });
  try {
    const c = await bridge.connect();
    await hello(c, "dev-reuse");
    const first = await publish(c, topic, 1);
    assert.equal(first.op, "ack", JSON.stringify(first));
    // Before: a resend was acked from the table before the permission check, with the first
    // write's position echoed under whatever topic the resend named.
    const notAllowed = await publish(c, denied, 1);
    assert.deepEqual(
      [notAllowed.op, notAllowed.code],
      ["nack", "PUBLISH_DENIED"],
      JSON.stringify(notAllowed),
    );
    const elsewhere = await publish(c, other, 1);
    assert.deepEqual([elsewhere.op, elsewhere.code, elsewhere.retryable], ["nack", "SEQ_REUSED", false]);
    assert.equal(
      elsewhere.message,
      `seq 1 was already used for a record to topic "${topic}"; this one (to ` +
        `"${other}") was not written: number each record with a seq of its own`,
    );
    const resend = await publish(c, topic, 1);
    assert.deepEqual([resend.op, resend.duplicate, resend.offset], ["ack", true, first.offset]);
    // A seq refused before Kafka is not left in flight: the next copy is written, not PUBLISH_IN_FLIGHT.
    assert.equal((await publish(c, denied, 2)).code, "PUBLISH_DENIED");
    const second = await publish(c, topic, 2);
    assert.deepEqual([second.op, second.duplicate], ["ack", undefined]);
    assert.deepEqual(sequences(await kcatRead(topic, undefined, 2)), ["dev-reuse#1", "dev-reuse#2"]);
    assert.equal((await kcatRead(other)).length, 0, "nothing written to the other topic");
    assert.equal((await kcatRead(denied)).length, 0, "nothing written to the denied topic");
    await c.close();
  } finally {
    await bridge.stop();
  }
});

for (const mode of ["file-lock", "heartbeat"] as const) {
  Deno.test(`exactly-once (${mode}): the new live answers resends of what the old live wrote`, async () => {
    const topic = uniqueTopic(`eo-ha-${mode}`);
    await createTopics([{ name: topic, partitions: 3 }]);
    const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
      "ha.allowFailback=false",
    ]);
    try {
      await Promise.all([ha.start("a"), ha.start("b")]);
      await ha.waitRole("a", "live");
      await ha.waitRole("b", "backup");
      const ca = await ha.bridge("a").connect();
      await hello(ca, "dev-ha");
      const acks = await Promise.all([1, 2, 3, 4, 5].map((s) => publishUntilAnswered(ca, topic, s)));
      for (const a of acks) assert.equal(a.op, "ack", JSON.stringify(a));
      await ha.stop("a", "SIGKILL");
      await ha.waitRole("b", "live");

      const cb = await ha.bridge("b").connect();
      await hello(cb, "dev-ha");
      // The client saw acks up to 2 only: it resends 3..5, then goes on with 6.
      const resent = await Promise.all(
        [3, 4, 5, 6].map((s) => publishUntilAnswered(cb, topic, s, { acked: 2 })),
      );
      for (const [i, r] of resent.slice(0, 3).entries()) {
        assert.equal(r.op, "ack", JSON.stringify(r));
        assert.equal(r.duplicate, true);
        assert.deepEqual(
          [r.partition, r.offset, r.epoch],
          [acks[i + 2].partition, acks[i + 2].offset, acks[i + 2].epoch],
          "the original position and epoch",
        );
      }
      assert.equal(resent[3].op, "ack");
      assert.equal(resent[3].duplicate, undefined);
      const records = await kcatRead(topic, undefined, 6);
      assert.deepEqual(sequences(records).sort(), [1, 2, 3, 4, 5, 6].map((s) => `dev-ha#${s}`));
      const writers = records.map((r) => `${seqOf(r)}:${r.headers["eb-node"]}`).sort();
      assert.deepEqual(
        writers,
        ["1:a", "2:a", "3:a", "4:a", "5:a", "6:b"],
        "only seq 6 written by the new live",
      );
      await cb.close();
    } finally {
      await ha.close();
    }
  });
}
