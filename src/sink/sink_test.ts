import assert from "node:assert/strict";
import {
  type Companion,
  type GroupOffset,
  KafkaFailure,
  type OutgoingRecord,
  type PartitionBatch,
  type ProducerLane,
  type RecordPosition,
  type TopicInfo,
} from "../kafka/types.ts";
import { BatchingSink, type BatchingSinkOptions } from "./sink.ts";
import { recordSizeBound } from "./record_size.ts";

/** Kafka as the sink sees it: per-partition logs, shared by all lanes of one test. */
class FakeKafka {
  readonly logs = new Map<string, OutgoingRecord[]>();
  concurrent = 0;
  maxConcurrent = 0;
  log(topic: string, partition: number): OutgoingRecord[] {
    const k = `${topic}/${partition}`;
    return this.logs.get(k) ?? this.logs.set(k, []).get(k)!;
  }
}

class FakeLane implements ProducerLane {
  readonly calls: PartitionBatch[][] = [];
  /** The group offsets each request carried in its transaction. */
  readonly offsetCalls: GroupOffset[][] = [];
  resets = 0;
  activations = 0;
  held = false;
  #release: (() => void)[] = [];
  /** Returns a failure to throw for this request instead of writing it. */
  refuse?: (batches: PartitionBatch[]) => KafkaFailure | Error | undefined;
  activateFailure?: KafkaFailure;

  constructor(readonly kafka: FakeKafka) {}

  release(): void {
    this.held = false;
    for (const r of this.#release.splice(0)) r();
  }

  async produce(
    batches: PartitionBatch[],
    companion?: Companion,
    offsets?: GroupOffset[],
  ): Promise<string[]> {
    this.calls.push(batches);
    this.offsetCalls.push(offsets ?? []);
    this.kafka.maxConcurrent = Math.max(this.kafka.maxConcurrent, ++this.kafka.concurrent);
    try {
      if (this.held) await new Promise<void>((r) => this.#release.push(r));
      await Promise.resolve();
      const failure = this.refuse?.(batches);
      if (failure) throw failure;
      const bases = batches.map((b) => {
        const log = this.kafka.log(b.topic, b.partition);
        log.push(...b.records);
        return String(log.length - b.records.length);
      });
      for (const b of companion?.(batches, bases) ?? []) {
        this.kafka.log(b.topic, b.partition).push(...b.records);
      }
      return bases;
    } finally {
      this.kafka.concurrent--;
    }
  }

  /** Resolves with the activation count as the epoch: each activation gets a greater one. */
  activate(): Promise<number> {
    this.activations++;
    return this.activateFailure ? Promise.reject(this.activateFailure) : Promise.resolve(this.activations);
  }

  reset(): Promise<void> {
    this.resets++;
    return Promise.resolve();
  }
}

class FakeCatalog {
  readonly known = new Map<string, TopicInfo | null>();
  lookups: string[] = [];
  #held = new Map<string, (() => void)[]>();
  constructor(
    readonly topics: Record<string, TopicInfo>,
    readonly slow: (name: string) => boolean = () => false,
  ) {}

  async topic(name: string): Promise<TopicInfo | null> {
    this.lookups.push(name);
    if (this.slow(name)) {
      await new Promise<void>((r) => this.#held.set(name, [...(this.#held.get(name) ?? []), r]));
    }
    const info = this.topics[name] ?? null;
    this.known.set(name, info);
    return info;
  }
  cachedTopic(name: string): TopicInfo | null | undefined {
    return this.known.get(name);
  }
  forgetTopic(name: string): void {
    this.known.delete(name);
  }
  releaseAll(): void {
    for (const rs of this.#held.values()) for (const r of rs) r();
    this.#held.clear();
  }
}

const MB = 1024 * 1024;
const topicInfo = (name: string, partitions: number, maxMessageBytes = MB): TopicInfo => ({
  name,
  partitions,
  maxMessageBytes,
});

function setup(opts: Partial<BatchingSinkOptions> & { lanes?: number; topics?: TopicInfo[] } = {}) {
  const kafka = new FakeKafka();
  const lanes = Array.from({ length: opts.lanes ?? 1 }, () => new FakeLane(kafka));
  const topics = opts.topics ?? [topicInfo("t", 3)];
  const catalog = new FakeCatalog(Object.fromEntries(topics.map((t) => [t.name, t])));
  const errors: KafkaFailure[] = [];
  const needsActivation: number[] = [];
  let clock = 0;
  const sink = new BatchingSink({
    lingerMs: 0,
    maxBatchMessages: 1000,
    maxBatchBytes: MB,
    maxRequestBytes: 4 * MB,
    publishTimeoutMs: 10_000,
    transactional: false,
    onError: (e) => errors.push(e),
    onNeedsActivation: () => needsActivation.push(clock),
    ...opts,
  }, {
    lanes,
    catalog,
    partitionForKey: (_t, partitions, key) => key[0] % partitions,
    now: () => clock,
  });
  return { sink, lanes, kafka, catalog, errors, needsActivation, setClock: (ms: number) => (clock = ms) };
}

const enc = new TextEncoder();
function rec(value: string | number, extra: Partial<OutgoingRecord> = {}): OutgoingRecord {
  const v = typeof value === "number" ? new Uint8Array(value) : enc.encode(value);
  return { topic: "t", value: v, headers: {}, ...extra };
}

type Outcome = { ok: true; pos: RecordPosition } | { ok: false; error: KafkaFailure };
function track(p: Promise<RecordPosition>): Promise<Outcome> {
  return p.then((pos) => ({ ok: true, pos }), (error) => ({ ok: false, error }));
}

/** Every ack names the partition and offset where the fake Kafka holds exactly that record. */
function assertAckedAtPosition(kafka: FakeKafka, r: OutgoingRecord, o: Outcome): void {
  assert.ok(o.ok, `expected an ack, got ${!o.ok && o.error.kind}: ${!o.ok && o.error.message}`);
  assert.equal(kafka.log(r.topic, o.pos.partition)[Number(o.pos.offset)], r);
}

Deno.test("sink: acks name each record's exact position, and per-key order holds across lanes", async () => {
  const { sink, lanes, kafka } = setup({ lanes: 3, topics: [topicInfo("t", 6)] });
  const records = Array.from({ length: 600 }, (_, i) => rec(`v${i}`, { key: new Uint8Array([i % 10]) }));
  const outcomes = await Promise.all(records.map((r) => track(sink.send(r))));
  records.forEach((r, i) => assertAckedAtPosition(kafka, r, outcomes[i]));
  for (let key = 0; key < 10; key++) {
    const offsets = outcomes.filter((_, i) => i % 10 === key).map((o) => o.ok && Number(o.pos.offset));
    assert.deepEqual(offsets, [...offsets].sort((a, b) => Number(a) - Number(b)), `key ${key} out of order`);
  }
  assert.ok(lanes.every((l) => l.calls.length > 0), "every lane carried requests");
  await sink.close();
});

Deno.test("sink: several requests are in flight at once, one per lane", async () => {
  const { sink, lanes, kafka } = setup({ lanes: 3, topics: [topicInfo("t", 3)] });
  for (const l of lanes) l.held = true;
  const pending = [0, 1, 2].map((partition) => track(sink.send(rec("x", { partition }))));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(kafka.concurrent, 3);
  for (const l of lanes) l.release();
  for (const o of await Promise.all(pending)) assert.ok(o.ok);
  await sink.close();
});

Deno.test("sink: batches are cut by bytes and by count, under the topic's limit", async () => {
  const { sink, lanes, kafka } = setup({
    lanes: 1,
    maxBatchBytes: 64 * 1024,
    maxBatchMessages: 40,
    topics: [topicInfo("t", 1, 20_000)],
  });
  lanes[0].held = true;
  const small = Array.from({ length: 100 }, (_, i) => rec(`s${i}`));
  const large = Array.from({ length: 30 }, () => rec(5000));
  const outcomes = await (async () => {
    const all = [...small, ...large].map((r) => track(sink.send(r)));
    await new Promise((r) => setTimeout(r, 5));
    lanes[0].release();
    return Promise.all(all);
  })();
  [...small, ...large].forEach((r, i) => assertAckedAtPosition(kafka, r, outcomes[i]));
  for (const call of lanes[0].calls) {
    for (const b of call) {
      assert.ok(b.records.length <= 40, `batch of ${b.records.length} records`);
      const bytes = 61 + b.records.reduce((n, r) => n + recordSizeBound(r), 0);
      assert.ok(bytes <= 20_000, `batch of ${bytes} bytes over the topic's 20000`);
    }
  }
  await sink.close();
});

Deno.test("sink: a record too large for the topic is nacked alone, before Kafka sees it", async () => {
  const { sink, kafka, errors } = setup({ topics: [topicInfo("t", 1, 10_000)] });
  const records = [rec(9000), rec(10_000), rec(100)];
  const outcomes = await Promise.all(records.map((r) => track(sink.send(r))));
  assertAckedAtPosition(kafka, records[0], outcomes[0]);
  assertAckedAtPosition(kafka, records[2], outcomes[2]);
  const o = outcomes[1];
  assert.ok(!o.ok);
  assert.equal(o.error.kind, "too_large");
  assert.match(o.error.message, /takes up to 100\d\d bytes .* max\.message\.bytes 10000/);
  assert.equal(errors.length, 0);
  await sink.close();
});

Deno.test("sink: a request Kafka refuses for its content is split until the bad record is alone", async () => {
  const { sink, lanes, kafka, errors } = setup({ lanes: 1, topics: [topicInfo("t", 3)] });
  const poison = rec("poison", { partition: 1 });
  lanes[0].refuse = (batches) =>
    batches.some((b) => b.records.includes(poison))
      ? new KafkaFailure("too_large", "Kafka refused: MESSAGE_TOO_LARGE")
      : undefined;
  lanes[0].held = true;
  const before = Array.from({ length: 20 }, (_, i) => rec(`a${i}`, { partition: i % 3 }));
  const after = Array.from({ length: 20 }, (_, i) => rec(`b${i}`, { partition: i % 3 }));
  const sent = [...before, poison, ...after];
  const pending = sent.map((r) => track(sink.send(r)));
  await new Promise((r) => setTimeout(r, 5));
  lanes[0].release();
  const outcomes = await Promise.all(pending);
  sent.forEach((r, i) => {
    if (r !== poison) assertAckedAtPosition(kafka, r, outcomes[i]);
  });
  const o = outcomes[sent.indexOf(poison)];
  assert.ok(!o.ok && o.error.kind === "too_large", "the poison record is nacked as too large");
  assert.match(!o.ok ? o.error.message : "", /refused the record as too large/);
  // Partition 1 keeps its order: what came before the poison record is written before what came after.
  const p1 = kafka.log("t", 1).map((r) => new TextDecoder().decode(r.value));
  assert.deepEqual(
    p1,
    sent.filter((r) => r.partition === 1 && r !== poison).map((r) => new TextDecoder().decode(r.value)),
  );
  // Only the first request carried several batches (which Kafka may have partly written):
  // a refused single batch was not appended, so its producer stays.
  assert.equal(lanes[0].resets, 1, "a fresh producer after the refused multi-batch request only");
  assert.equal(errors.length, 0, "a refused record is not a Kafka error");
  await sink.close();
});

Deno.test("sink: the flush chain goes on when the records at the head have all timed out", async () => {
  const { sink, lanes, kafka, setClock } = setup({
    maxBatchMessages: 2,
    publishTimeoutMs: 60,
    topics: [topicInfo("t", 1)],
  });
  lanes[0].held = true;
  setClock(0);
  const a = track(sink.send(rec("a")));
  await new Promise((r) => setTimeout(r, 1));
  const b = track(sink.send(rec("b"))), c = track(sink.send(rec("c")));
  setClock(30);
  const d = rec("d");
  const dOutcome = track(sink.send(d));
  setClock(70); // a (in flight), b and c (queued) are past their deadline; d is not
  const [oa, ob, oc] = await Promise.all([a, b, c]);
  assert.ok(!oa.ok && oa.error.kind === "timeout", "in flight: may be written");
  assert.ok(!ob.ok && ob.error.kind === "unavailable", "queued, never sent: not written");
  assert.ok(!oc.ok && oc.error.kind === "unavailable");
  lanes[0].release(); // nothing else is sent to the sink: d must still go
  assertAckedAtPosition(kafka, d, await dOutcome);
  await sink.close();
});

Deno.test("sink: records for a topic being looked up wait alone; other topics flow", async () => {
  const kafka = new FakeKafka();
  const lane = new FakeLane(kafka);
  const catalog = new FakeCatalog({ good: topicInfo("good", 1) }, (n) => n.startsWith("slow"));
  const sink = new BatchingSink(
    {
      lingerMs: 0,
      maxBatchMessages: 100,
      maxBatchBytes: MB,
      maxRequestBytes: MB,
      publishTimeoutMs: 10_000,
      transactional: false,
    },
    { lanes: [lane], catalog, partitionForKey: () => 0 },
  );
  const slow = [1, 2, 3].map((i) => track(sink.send(rec(`s${i}`, { topic: "slow-topic" }))));
  const other = [1, 2, 3].map((i) => track(sink.send(rec(`s${i}`, { topic: "slow-other" }))));
  const good = Array.from({ length: 50 }, (_, i) => rec(`g${i}`, { topic: "good" }));
  const outcomes = await Promise.all(good.map((r) => track(sink.send(r))));
  good.forEach((r, i) => assertAckedAtPosition(kafka, r, outcomes[i]));
  assert.deepEqual(catalog.lookups.sort(), ["good", "slow-other", "slow-topic"], "one lookup per name");
  catalog.releaseAll();
  for (const o of await Promise.all([...slow, ...other])) {
    assert.ok(!o.ok && o.error.kind === "unknown_topic");
  }
  await sink.close();
});

Deno.test("sink: failures map to honest kinds, and a fresh producer follows each", async () => {
  const { sink, lanes, errors } = setup();
  lanes[0].refuse = () => new KafkaFailure("timeout", "request timed out after it was sent");
  const o1 = await track(sink.send(rec("x")));
  assert.ok(!o1.ok && o1.error.kind === "timeout");
  lanes[0].refuse = () => new Error("something odd inside the client");
  const o2 = await track(sink.send(rec("y")));
  assert.ok(!o2.ok && o2.error.kind === "timeout", "an unknown error after sending means: may be written");
  lanes[0].refuse = undefined;
  const o3 = await track(sink.send(rec("z")));
  assert.ok(o3.ok);
  assert.equal(lanes[0].resets, 2);
  assert.deepEqual(errors.map((e) => e.kind), ["timeout", "timeout"]);
  await sink.close();
});

Deno.test("sink (HA): refuses until activated; fencing stops it; a record's fault never re-takes the id itself", async () => {
  const { sink, lanes, errors, needsActivation } = setup({ transactional: true });
  const refused = await track(sink.send(rec("early")));
  assert.ok(!refused.ok && refused.error.kind === "fenced");
  await sink.activate();
  assert.equal(lanes[0].activations, 1);
  assert.ok((await track(sink.send(rec("ok")))).ok);

  // A refused request of several batches: its parts wait for a fresh epoch, which only the HA node takes.
  lanes[0].refuse = (b) => b.length > 1 ? new KafkaFailure("too_large", "MESSAGE_TOO_LARGE") : undefined;
  lanes[0].held = true;
  const parts = [0, 1, 2].map((partition) => track(sink.send(rec("p", { partition }))));
  await new Promise((r) => setTimeout(r, 5));
  lanes[0].release();
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(needsActivation.length, 1, "the HA node is asked for a fresh epoch");
  assert.equal(lanes[0].activations, 1, "the sink did not take the id itself");
  assert.equal(sink.active, false);
  const callsBefore = lanes[0].calls.length;
  const waiting = track(sink.send(rec("queued meanwhile", { partition: 0 })));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(lanes[0].calls.length, callsBefore, "nothing is sent until the epoch is fresh");
  await sink.activate(); // what HaNode.reactivate() does while live
  for (const o of await Promise.all([...parts, waiting])) assert.ok(o.ok, "written after re-activation");
  assert.equal(errors.length, 0);

  lanes[0].refuse = () => new KafkaFailure("fenced", "PRODUCER_FENCED");
  lanes[0].held = true;
  const inFlight = track(sink.send(rec("a", { partition: 0 })));
  await new Promise((r) => setTimeout(r, 5));
  const queued = track(sink.send(rec("b", { partition: 0 })));
  lanes[0].release();
  const [oa, ob] = await Promise.all([inFlight, queued]);
  assert.ok(!oa.ok && oa.error.kind === "fenced");
  assert.ok(!ob.ok && ob.error.kind === "fenced", "queued records are answered at once: not written");
  assert.equal(sink.active, false);
  assert.deepEqual(errors.map((e) => e.kind), ["fenced"]);
  const after = await track(sink.send(rec("c")));
  assert.ok(!after.ok && after.error.kind === "fenced");
  await sink.close();
});

Deno.test("sink (HA): nothing is sent while activate() is still taking the id", async () => {
  const { sink, lanes } = setup({ transactional: true });
  let finish!: (epoch: number) => void;
  lanes[0].activate = () => {
    lanes[0].activations++;
    return new Promise<number>((r) => (finish = r));
  };
  const activating = sink.activate();
  await new Promise((r) => setTimeout(r, 1));
  const o = track(sink.send(rec("early but admitted")));
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(lanes[0].calls.length, 0);
  finish(7);
  assert.equal(await activating, 7, "the activation's epoch is Kafka's (the lane's)");
  assert.ok((await o).ok);
  await sink.close();
});

Deno.test("sink: a batch without an offset fails its request, and a fresh producer follows", async () => {
  const { sink, lanes } = setup();
  const real = lanes[0].produce.bind(lanes[0]);
  lanes[0].produce = async (b) => (await real(b)).map(() => "-1");
  const o = await track(sink.send(rec("x")));
  assert.ok(!o.ok && o.error.kind === "timeout");
  assert.equal(lanes[0].resets, 1);
  await sink.close();
});

Deno.test("sink: parts of a refused multi-batch request are never nacked as 'not written'", async () => {
  const { sink, lanes } = setup({ lanes: 1 });
  lanes[0].held = true;
  lanes[0].refuse = (b) => b.length > 1 ? new KafkaFailure("too_large", "MESSAGE_TOO_LARGE") : undefined;
  const parts = [0, 1, 2].map((partition) => track(sink.send(rec("p", { partition }))));
  await new Promise((r) => setTimeout(r, 5));
  lanes[0].refuse = (b) =>
    b.length > 1
      ? new KafkaFailure("too_large", "MESSAGE_TOO_LARGE")
      : new KafkaFailure("unavailable", "down");
  lanes[0].release();
  for (const o of await Promise.all(parts)) {
    assert.ok(!o.ok && o.error.kind === "timeout", "the first request may have written it");
  }
  await sink.close();
});

Deno.test("sink: records refused for their topic are answered per topic; other topics' records are written", async () => {
  const { sink, lanes, kafka } = setup({ lanes: 1, topics: [topicInfo("t", 1), topicInfo("gone", 1)] });
  lanes[0].refuse = (b) =>
    b.some((x) => x.topic === "gone")
      ? new KafkaFailure("unknown_topic", "UNKNOWN_TOPIC_OR_PARTITION")
      : undefined;
  await track(sink.send(rec("warm", { topic: "gone" }))); // known to the catalog now
  lanes[0].held = true;
  const good = rec("good");
  const outcomes = [track(sink.send(good)), track(sink.send(rec("lost", { topic: "gone" })))];
  await new Promise((r) => setTimeout(r, 5));
  lanes[0].release();
  const [og, ogone] = await Promise.all(outcomes);
  assertAckedAtPosition(kafka, good, og);
  assert.ok(!ogone.ok && ogone.error.kind === "unknown_topic");
  await sink.close();
});

Deno.test("sink: splitting one client's bad batch does not stall the lane's other partitions", async () => {
  const { sink, lanes, kafka } = setup({ lanes: 1, topics: [topicInfo("t", 2)] });
  lanes[0].refuse = (b) =>
    b.some((x) => x.records.some((r) => r.value.byteLength === 7))
      ? new KafkaFailure("invalid_record", "INVALID_RECORD")
      : undefined;
  lanes[0].held = true;
  const bad = Array.from({ length: 64 }, () => track(sink.send(rec(7, { partition: 0 }))));
  await new Promise((r) => setTimeout(r, 5));
  const other = rec("other", { partition: 1 });
  const otherOutcome = track(sink.send(other));
  lanes[0].release();
  assertAckedAtPosition(kafka, other, await otherOutcome);
  const callsWhenOtherAcked = lanes[0].calls.length;
  for (const o of await Promise.all(bad)) assert.ok(!o.ok && o.error.kind === "invalid_record");
  assert.ok(callsWhenOtherAcked < 5, `the other partition waited for ${callsWhenOtherAcked} requests`);
  await sink.close();
});

Deno.test("sink: keyless records for a compacted topic are refused before Kafka sees them", async () => {
  const { sink, lanes } = setup({ topics: [{ ...topicInfo("t", 1), compacted: true }] });
  const o = await track(sink.send(rec("no key")));
  assert.ok(!o.ok && o.error.kind === "rejected");
  assert.match(o.error.message, /compacted/);
  assert.ok((await track(sink.send(rec("keyed", { key: new Uint8Array([1]) })))).ok);
  assert.equal(lanes[0].calls.length, 1);
  await sink.close();
});

Deno.test("sink: close twice waits both times", async () => {
  const { sink } = setup({ lingerMs: 30 });
  const o = track(sink.send(rec("x")));
  await Promise.all([sink.close(), sink.close()]);
  assert.ok((await o).ok);
});

Deno.test("sink: close waits for records handed over, then drops the producers", async () => {
  const { sink, lanes, kafka } = setup({ lingerMs: 50, lanes: 2 });
  const records = Array.from({ length: 10 }, (_, i) => rec(`c${i}`));
  const pending = records.map((r) => track(sink.send(r)));
  await sink.close();
  const outcomes = await Promise.all(pending);
  records.forEach((r, i) => assertAckedAtPosition(kafka, r, outcomes[i]));
  assert.ok(lanes.every((l) => l.resets === 1));
  const late = await track(sink.send(rec("late")));
  assert.ok(!late.ok && late.error.kind === "unavailable");
});

Deno.test("sink: each sequenced record's fate is told once, also when its answer came first", async () => {
  const fates: [number, string][] = [];
  const { sink, lanes, kafka, setClock } = setup({
    publishTimeoutMs: 1_000,
    topics: [topicInfo("t", 1, 1_000)],
    onSequencedFate: (r, fate) =>
      fates.push([r.sequence!.seq, typeof fate === "string" ? fate : fate.offset]),
  });
  const seqd = (seq: number, size: number | string = "v") => rec(size, { sequence: { clientId: "c", seq } });
  assert.ok((await track(sink.send(seqd(1)))).ok);
  assert.ok(!(await track(sink.send(seqd(2, 5_000)))).ok); // too large: refused before Kafka
  lanes[0].held = true;
  const late = track(sink.send(seqd(3)));
  await new Promise((r) => setTimeout(r, 10));
  setClock(2_000);
  const answered = await late;
  assert.ok(!answered.ok && answered.error.kind === "timeout", "answered 'may be written' by its deadline");
  assert.deepEqual(fates, [[1, "0"], [2, "not_written"]], "no fate while the request is out");
  lanes[0].release();
  await sink.close();
  assert.deepEqual(fates, [[1, "0"], [2, "not_written"], [3, "1"]]);
  assert.equal(kafka.log("t", 0).length, 2);
  sink.send(seqd(4)).catch(() => {});
  assert.deepEqual(fates.at(-1), [4, "not_written"], "a closed sink tells the fate of what it refuses");
});

Deno.test("sink (HA): the companion's records join each transaction; afterActivation runs before records flow", async () => {
  const seen: string[][] = [];
  let barrier = 0;
  const { sink, kafka } = setup({
    transactional: true,
    topics: [topicInfo("t", 2), topicInfo("log", 1)],
    companion: (batches, bases) => {
      seen.push(bases);
      return [{ topic: "log", partition: 0, records: batches.map((b) => rec(`${b.partition}@${bases[0]}`)) }];
    },
    afterActivation: async (produce) => {
      await produce([{ topic: "log", partition: 0, records: [rec("barrier")] }]);
      barrier = kafka.log("log", 0).length;
    },
  });
  await sink.activate();
  assert.equal(barrier, 1, "the barrier was written through the lane during activation");
  assert.ok((await track(sink.send(rec("a", { partition: 1 })))).ok);
  assert.deepEqual(seen, [["0"]]);
  assert.equal(new TextDecoder().decode(kafka.log("log", 0)[1].value), "1@0");
  await sink.close();
});

Deno.test("sink (HA): abandon() stops at once with a request hung in flight, and answers what was queued", async () => {
  const { sink, lanes } = setup({ transactional: true, lingerMs: 0 });
  await sink.activate();
  lanes[0].held = true; // Kafka stops answering (a link that drops packets)
  const first = track(sink.send(rec("in flight")));
  while (lanes[0].calls.length === 0) await new Promise((r) => setTimeout(r, 1));
  const queued = track(sink.send(rec("queued behind it")));
  await new Promise((r) => setTimeout(r, 5));
  const resetsBefore = lanes[0].resets;
  const abandoned = sink.abandon();
  assert.match(abandoned.join(), /1 records in flight/);
  const q = await queued;
  assert.ok(!q.ok && q.error.kind === "fenced", "a queued record is refused: it was never sent");
  assert.equal(sink.active, false);
  assert.equal(lanes[0].resets, resetsBefore + 1, "the producer is dropped");
  const late = track(sink.send(rec("after")));
  assert.ok(!(await late).ok);
  lanes[0].release();
  await first;
  await sink.close();
});

Deno.test("sink (HA): group offsets go in transactions of their own, one per partition, never starved by records", async () => {
  const { sink, lanes } = setup({ transactional: true, lingerMs: 5 });
  const off = (partition: number, next: string) => ({ groupId: "g", topic: "t", partition, next });
  assert.equal(
    await sink.commitOffset(off(0, "1")).catch((e: KafkaFailure) => e.kind),
    "fenced",
    "refused until activated: this node is not the live",
  );
  await sink.activate();
  const commits = [
    sink.commitOffset(off(0, "5")),
    sink.commitOffset(off(0, "3")),
    sink.commitOffset(off(1, "2")),
  ];
  await Promise.all(commits);
  assert.deepEqual(lanes[0].calls.at(-1), [], "no records in the offsets' transaction");
  assert.deepEqual(
    lanes[0].offsetCalls.at(-1),
    [off(0, "5"), off(1, "2")],
    "the highest of partition 0, and 1",
  );

  // Records keep coming: the offsets still go, at most one records request later.
  lanes[0].held = true;
  const before = lanes[0].calls.length;
  const records = Array.from({ length: 20 }, (_, i) => track(sink.send(rec(`r${i}`, { partition: i % 3 }))));
  while (lanes[0].calls.length === before) await new Promise((r) => setTimeout(r, 1)); // one request in flight
  const committed = sink.commitOffset(off(2, "9"));
  const more = Array.from({ length: 20 }, (_, i) => track(sink.send(rec(`s${i}`, { partition: i % 3 }))));
  lanes[0].release();
  await committed;
  const at = lanes[0].offsetCalls.findIndex((o) => o.some((x) => x.partition === 2));
  assert.ok(at >= 0 && lanes[0].calls[at].length === 0, "alone");
  for (const o of await Promise.all([...records, ...more])) assert.ok(o.ok);
  await sink.close();
});

Deno.test("sink (HA): a refused group offset answers only its commits; a fenced one stops the sink like a write", async () => {
  const { sink, lanes } = setup({ transactional: true, lingerMs: 0 });
  await sink.activate();
  const off = { groupId: "g", topic: "t", partition: 0, next: "4" };
  lanes[0].refuse = (batches) =>
    batches.length === 0
      ? new KafkaFailure("rejected", "Kafka refused the group offset commit: X")
      : undefined;
  const refused = await sink.commitOffset(off).catch((e: KafkaFailure) => e.kind);
  assert.equal(refused, "rejected");
  assert.ok((await track(sink.send(rec("still fine")))).ok, "records are untouched");
  assert.equal(sink.active, true);

  lanes[0].refuse = (batches) =>
    batches.length === 0
      ? new KafkaFailure("timeout", "Kafka did not confirm the write (CONCURRENT_TRANSACTIONS)")
      : undefined;
  const activations = lanes[0].activations;
  assert.equal(await sink.commitOffset({ ...off, next: "6" }).catch((e: KafkaFailure) => e.kind), "timeout");
  assert.equal(sink.active, true, "an offsets-only transaction that failed puts no record in doubt");
  assert.ok((await track(sink.send(rec("and on")))).ok);
  assert.equal(lanes[0].activations, activations, "no fresh producer epoch for it");

  lanes[0].refuse = () => new KafkaFailure("fenced", "a newer live holds the pair's transactional id");
  const fenced = await sink.commitOffset({ ...off, next: "8" }).catch((e: KafkaFailure) => e.kind);
  assert.equal(fenced, "fenced", "a zombie's commit fails like its writes");
  assert.equal(sink.active, false);
  await sink.close();
});
