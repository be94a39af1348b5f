import assert from "node:assert/strict";
import type {
  DeliverFn,
  Delivery,
  KafkaSource,
  SourceEvents,
  SourceHandle,
  SourceOptions,
} from "../kafka/types.ts";
import { createLogger } from "../observability/logger.ts";
import { Cursor } from "./cursor.ts";
import { ReaderPool } from "./catch_up.ts";
import { TopicHub } from "./topic_hub.ts";

const enc = new TextEncoder();
const delivery = (partition: number, offset: number): Delivery => ({
  topic: "t",
  partition,
  offset: String(offset),
  timestamp: "0",
  key: null,
  value: enc.encode(`p${partition}-${offset}`),
  headers: {},
});

/** Kafka as the hub sees it: each open() is a reader whose records the test pushes in. */
class FakeSource implements KafkaSource {
  readonly readers: { opts: SourceOptions; deliver: DeliverFn; events?: SourceEvents; stopped: boolean }[] =
    [];
  open(opts: SourceOptions, deliver: DeliverFn, events?: SourceEvents): Promise<SourceHandle> {
    const reader = { opts, deliver, events, stopped: false };
    this.readers.push(reader);
    return Promise.resolve({
      commit: () => Promise.resolve(),
      stop: () => {
        reader.stopped = true;
        return Promise.resolve();
      },
    });
  }
  get tail() {
    return this.readers[0];
  }
  get catchUps() {
    return this.readers.slice(1);
  }
}

interface Sock {
  frames: { op: string; partition: number; offset: string; value?: string; from?: string; to?: string }[];
  buffered: number;
}

async function setup(
  opts: { windowRecords?: number; ends?: number[]; earliest?: number[]; poolSize?: number } = {},
) {
  const source = new FakeSource();
  const ends = opts.ends ?? [0, 0];
  const hub = new TopicHub("t", "kafka.t", {
    source,
    catalog: {
      endOffsets: () => Promise.resolve(Object.fromEntries(ends.map((o, p) => [String(p), String(o)]))),
      earliestOffsets: () =>
        Promise.resolve(
          Object.fromEntries((opts.earliest ?? ends.map(() => 0)).map((o, p) => [String(p), String(o)])),
        ),
    },
    pool: new ReaderPool(opts.poolSize ?? 4),
    windowLimits: { maxRecords: opts.windowRecords ?? 100, maxBytes: 1 << 24 },
    groupId: () => crypto.randomUUID(),
    log: createLogger("silent", "test"),
  });
  await hub.start();
  const cursor = (credit: number, positions?: number[]) => {
    const sock: Sock = { frames: [], buffered: 0 };
    const c = new Cursor(
      {
        sub: "s",
        clientTopic: "kafka.t",
        encoding: "utf8",
        credit,
        maxCredit: 10_000,
        maxBufferedBytes: 1000,
      },
      hub,
      { send: (f) => sock.frames.push(JSON.parse(f)), bufferedAmount: () => sock.buffered },
    );
    for (const w of hub.windows()) c.positions.set(w.partition, positions?.[w.partition] ?? w.next);
    hub.add(c);
    c.begin();
    return { c, sock };
  };
  const publish = async (partition: number, from: number, to: number) => {
    for (let o = from; o < to; o++) await source.tail.deliver(delivery(partition, o));
    await new Promise((r) => setTimeout(r, 5)); // the hub pumps once per task
  };
  return { hub, source, cursor, publish };
}

const offsets = (s: Sock, partition: number) =>
  s.frames.filter((f) => f.op === "message" && f.partition === partition).map((f) => Number(f.offset));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

Deno.test("hub: one tail reader, from the end of every partition; every subscriber gets every record", async () => {
  const { hub, source, cursor, publish } = await setup({ ends: [5, 9] });
  assert.equal(source.readers.length, 1);
  assert.deepEqual(source.tail.opts.startOffsets, { "0": "5", "1": "9" });
  const a = cursor(100), b = cursor(100);
  await publish(0, 5, 8);
  await publish(1, 9, 10);
  for (const { sock } of [a, b]) {
    assert.deepEqual(offsets(sock, 0), [5, 6, 7]);
    assert.deepEqual(offsets(sock, 1), [9]);
  }
  assert.equal(source.readers.length, 1, "no reader per subscriber");
  await hub.stop();
});

Deno.test("hub: a subscriber without credit pauses alone; credit resumes it where it was", async () => {
  const { hub, cursor, publish } = await setup();
  const fast = cursor(100), slow = cursor(2);
  await publish(0, 0, 10);
  assert.deepEqual(offsets(fast.sock, 0), range(0, 10));
  assert.deepEqual(offsets(slow.sock, 0), [0, 1]);
  slow.c.grant(3);
  assert.deepEqual(offsets(slow.sock, 0), range(0, 5));
  await hub.stop();
});

Deno.test("hub: a full socket pauses a subscriber until it drains", async () => {
  const { hub, cursor, publish } = await setup();
  const s = cursor(100);
  s.sock.buffered = 5000;
  await publish(0, 0, 3);
  assert.deepEqual(offsets(s.sock, 0), []);
  assert.equal(hub.blockedCursors, 1);
  s.sock.buffered = 0;
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(offsets(s.sock, 0), [0, 1, 2]);
  await hub.stop();
});

Deno.test("hub: a subscriber that fell out of the window catches up from Kafka, with no gap or duplicate at the seam", async () => {
  const { hub, source, cursor, publish } = await setup({ windowRecords: 5, ends: [0, 0] });
  const s = cursor(0);
  await publish(0, 0, 20); // the window holds 15..19 now; the subscriber is at 0
  s.c.grant(100);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(source.catchUps.length, 1, "a catch-up reader was opened");
  const reader = source.catchUps[0];
  assert.deepEqual(reader.opts.startOffsets, { "0": "0", "1": "0" });
  // Kafka replays partition 0 from 0; the cursor takes records until the window covers it.
  // Once the window covers the subscriber the reader answers "done" (false), and its consumer stops.
  for (let o = 0; o < 20 && !reader.stopped; o++) await reader.deliver(delivery(0, o));
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(reader.stopped, "the catch-up reader stops once the window serves the subscriber");
  await publish(0, 20, 25);
  assert.deepEqual(offsets(s.sock, 0), range(0, 25), "every offset once, in order");
  assert.equal(hub.catchUpReaders, 0);
  await hub.stop();
});

Deno.test("hub: records deleted by retention are reported with the first offset available, never skipped silently", async () => {
  const { hub, source, cursor, publish } = await setup({
    windowRecords: 5,
    ends: [100, 0],
    earliest: [40, 0],
  });
  const s = cursor(100, [10, 0]); // asked for offset 10 of partition 0; Kafka holds 40 onwards
  await new Promise((r) => setTimeout(r, 5));
  const skipped = s.sock.frames.find((f) => f.op === "skipped");
  assert.deepEqual({ partition: skipped?.partition, from: skipped?.from, to: skipped?.to }, {
    partition: 0,
    from: "10",
    to: "40",
  });
  const reader = source.catchUps[0];
  assert.equal(reader.opts.startOffsets?.["0"], "40");
  for (let o = 40; o < 100; o++) await reader.deliver(delivery(0, o));
  await publish(0, 100, 102);
  assert.deepEqual(offsets(s.sock, 0), range(40, 102));
  await hub.stop();
});

Deno.test("hub: subscribers waiting at the same place for a catch-up reader share one", async () => {
  const { hub, source, cursor, publish } = await setup({ windowRecords: 2, poolSize: 1 });
  await publish(0, 0, 10);
  const x = cursor(100, [5, 0]); // takes the only slot
  const a = cursor(100, [0, 0]), b = cursor(100, [0, 0]); // both wait, at the same place
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(source.catchUps.length, 1);
  for (let o = 5; o < 10 && !source.catchUps[0].stopped; o++) {
    await source.catchUps[0].deliver(delivery(0, o));
  }
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(source.catchUps.length, 2, "one reader for a and b together");
  for (let o = 0; o < 10 && !source.catchUps[1].stopped; o++) {
    await source.catchUps[1].deliver(delivery(0, o));
  }
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(offsets(x.sock, 0), range(5, 10));
  for (const s of [a, b]) assert.deepEqual(offsets(s.sock, 0), range(0, 10));
  assert.ok(source.catchUps[1].stopped);
  await hub.stop();
});

Deno.test("hub: catch-up readers are a bounded pool; a subscriber beyond it waits its turn, its place kept", async () => {
  const { hub, source, cursor, publish } = await setup({ windowRecords: 2, poolSize: 1 });
  await publish(0, 0, 10);
  const a = cursor(100, [0, 0]), b = cursor(100, [3, 0]); // behind, at different places
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(source.catchUps.length, 1, "one reader at a time");
  for (let o = 0; o < 10 && !source.catchUps[0].stopped; o++) {
    await source.catchUps[0].deliver(delivery(0, o));
  }
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(source.catchUps.length, 2, "the slot passed to the waiting subscriber");
  assert.equal(source.catchUps[1].opts.startOffsets?.["0"], "3", "from its own place");
  for (let o = 3; o < 10 && !source.catchUps[1].stopped; o++) {
    await source.catchUps[1].deliver(delivery(0, o));
  }
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(offsets(a.sock, 0), range(0, 10));
  assert.deepEqual(offsets(b.sock, 0), range(3, 10));
  await hub.stop();
});

Deno.test("hub: a reader that went by records a window then lost is replaced, so no gap opens", async () => {
  // Partition 0 is behind (catch-up); partition 1 is served by its window. The reader reads both
  // and leaves partition 1 to the window. Then the subscriber pauses and partition 1's window
  // moves on past it: the old reader is past those records, so a new one must start.
  const { hub, source, cursor, publish } = await setup({ windowRecords: 3 });
  await publish(0, 0, 10); // partition 0's window: 7..9
  const s = cursor(3, [0, 0]);
  await new Promise((r) => setTimeout(r, 5));
  const first = source.catchUps[0];
  assert.ok(first, "a reader for partition 0");
  await first.deliver(delivery(0, 0));
  await first.deliver(delivery(0, 1));
  await first.deliver(delivery(0, 2)); // credit spent
  await publish(1, 0, 2); // partition 1: the window holds 0..1 and sends nothing (no credit)
  const waiting = first.deliver(delivery(1, 0)); // the window serves partition 1: dropped by the reader
  assert.equal(await waiting, true);
  await first.deliver(delivery(1, 1));
  await publish(1, 2, 8); // partition 1's window moves to 5..7: the subscriber (at 0) falls out
  s.c.grant(100);
  await new Promise((r) => setTimeout(r, 10));
  assert.ok(first.stopped, "the reader that went by partition 1's records is stopped");
  const second = source.catchUps[1];
  assert.deepEqual(
    second.opts.startOffsets,
    { "0": "3", "1": "0" },
    "a new reader from where the subscriber is",
  );
  for (let o = 3; o < 10; o++) await second.deliver(delivery(0, o));
  for (let o = 0; o < 8 && !second.stopped; o++) await second.deliver(delivery(1, o));
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(offsets(s.sock, 0), range(0, 10));
  assert.deepEqual(offsets(s.sock, 1), range(0, 8), "no gap on partition 1");
  await hub.stop();
});

Deno.test("hub: a partition the hub did not know starts at 0 for everyone", async () => {
  const { hub, source, cursor } = await setup({ ends: [3] });
  const s = cursor(100);
  await source.tail.deliver(delivery(1, 0));
  await source.tail.deliver(delivery(1, 1));
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(offsets(s.sock, 1), [0, 1]);
  await hub.stop();
});

Deno.test("hub: under the disconnect policy a subscriber that stalls is reported once", async () => {
  const { hub, publish } = await setup();
  const stalls: string[] = [];
  const sock = { frames: [] as unknown[], buffered: 0 };
  const c = new Cursor(
    {
      sub: "s",
      clientTopic: "kafka.t",
      encoding: "utf8",
      credit: 1,
      maxCredit: 100,
      maxBufferedBytes: 1000,
      stall: { timeoutMs: 150, onStalled: (r) => stalls.push(r) },
    },
    hub,
    { send: (f) => sock.frames.push(f), bufferedAmount: () => sock.buffered },
  );
  for (const w of hub.windows()) c.positions.set(w.partition, w.next);
  hub.add(c);
  c.begin();
  await publish(0, 0, 3); // one sent, two waiting with no credit
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(stalls, [], "not before the timeout");
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(stalls, ["no credit for 150 ms with messages waiting"]);
  assert.ok(c.stopped);
  await hub.stop();
});

Deno.test("hub: a tail reader that fails for good is replaced, continuing where the windows are", async () => {
  const { hub, source, cursor, publish } = await setup({ ends: [4, 0] });
  const s = cursor(100);
  await publish(0, 4, 6);
  const first = source.tail;
  first.events?.onFatal?.(new Error("not authorized"));
  await new Promise((r) => setTimeout(r, 1100));
  assert.ok(first.stopped);
  const second = source.readers[source.readers.length - 1];
  assert.notEqual(second, first);
  assert.deepEqual(second.opts.startOffsets, { "0": "6", "1": "0" }, "from where the windows are");
  await second.deliver(delivery(0, 6));
  await new Promise((r) => setTimeout(r, 5));
  assert.deepEqual(offsets(s.sock, 0), [4, 5, 6]);
  await hub.stop();
});
