/**
 * A Session over a fake socket and a fake sink (the real topic policy, authenticator, metrics
 * and dedupe ledger): what it answers, and what it hands to Kafka, for publishes and hellos.
 */
import assert from "node:assert/strict";
import { Authenticator } from "../auth/authenticator.ts";
import { Permissions } from "../auth/permissions.ts";
import type { Principal } from "../auth/principal.ts";
import { type ConfigInput, configSchema } from "../config/schema.ts";
import { DedupeLedger } from "../dedupe/ledger.ts";
import { DedupeTable } from "../dedupe/table.ts";
import type {
  DeliverFn,
  KafkaSink,
  OutgoingRecord,
  RecordPosition,
  SourceEvents,
  SourceOptions,
} from "../kafka/types.ts";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { ConsumerBudget } from "../limits/consumer_budget.ts";
import { Session, type SessionDeps } from "./session.ts";
import { TopicPolicy } from "./topics.ts";

type Frame = Record<string, unknown>;

/**
 * A session over a fake socket, with the deps every test shares (node n1, live at epoch 3, Kafka up)
 * under the test's own. `frames` holds what it sent; `settle` lets its promise chains run.
 */
function sessionOver(deps: Record<string, unknown>, token?: string) {
  const frames: Frame[] = [];
  const session = new Session(
    { send: (text) => void frames.push(JSON.parse(text)), bufferedAmount: () => 0, close: () => {} },
    {
      identity: { node: "n1", role: () => "live", epoch: () => 3 },
      metrics: new BridgeMetrics(),
      log: createLogger("silent", "n1"),
      kafkaUp: () => true,
      ...deps,
    } as unknown as SessionDeps,
    token,
  );
  const settle = async () => {
    for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
  };
  return { session, frames, settle };
}

function harness(input: ConfigInput = {}) {
  const config = configSchema.parse({
    ...input,
    // "enabled": anonymous whatever the (fake) socket's address.
    auth: { anonymous: "enabled", anonymousPermissions: { publish: ["orders", "audit"] }, ...input.auth },
  });
  const ledger = new DedupeLedger(new DedupeTable(config.dedupe), {
    node: "n1",
    rebuildTimeoutMs: 1_000,
    epoch: () => 3,
  });
  const sent: OutgoingRecord[] = [];
  const offsets = new Map<string, number>();
  const sink = {
    send(record: OutgoingRecord): Promise<RecordPosition> {
      sent.push(record);
      const offset = offsets.get(record.topic) ?? 0;
      offsets.set(record.topic, offset + 1);
      const position = { topic: record.topic, partition: 0, offset: String(offset) };
      if (record.sequence) ledger.fate(record, position); // the sink's onSequencedFate, as app.ts wires it
      return Promise.resolve(position);
    },
  } as unknown as KafkaSink;
  let kafkaUp = true;
  const { session, frames } = sessionOver({
    config,
    sink,
    topics: new TopicPolicy(config.topics),
    auth: new Authenticator(config.auth, "127.0.0.1", undefined),
    kafkaUp: () => kafkaUp,
    dedupe: ledger,
  });
  session.start();
  let requests = 0;
  /** Sends a frame and returns the answer that names its id. */
  const request = async (frame: Frame): Promise<Frame> => {
    const id = `r${++requests}`;
    session.handleText(JSON.stringify({ id, ...frame }));
    for (let i = 0; i < 10; i++) {
      const answer = frames.find((f) => f.id === id);
      if (answer) return answer;
      await new Promise((r) => setTimeout(r, 0));
    }
    throw new Error(`no answer to ${JSON.stringify(frame)}`);
  };
  const publish = (topic: string, seq: number, extra: Frame = {}) =>
    request({ op: "publish", topic, value: `s${seq}`, seq, ...extra });
  return { session, sent, request, publish, setKafkaUp: (up: boolean) => (kafkaUp = up) };
}

Deno.test("session: a resent seq is checked like a new publish before the dedupe ledger answers it", async () => {
  const h = harness({ topics: { deny: ["__*", "hidden"] } });
  assert.equal((await h.request({ op: "hello", clientId: "dev-1", instance: "run-1" })).op, "hello_ok");
  const first = await h.publish("orders", 1);
  assert.deepEqual([first.op, first.topic, first.offset], ["ack", "orders", "0"]);
  const again = await h.publish("orders", 1);
  assert.deepEqual([again.op, again.duplicate, again.offset, again.epoch], ["ack", true, "0", 3]);

  const denied = await h.publish("payments", 1);
  assert.deepEqual(
    [denied.op, denied.code],
    ["nack", "PUBLISH_DENIED"],
    "no duplicate ack for a denied topic",
  );
  const hidden = await h.publish("hidden", 1);
  assert.deepEqual([hidden.op, hidden.code], ["nack", "TOPIC_DENIED"]);

  const reused = await h.publish("audit", 1);
  assert.deepEqual([reused.op, reused.code, reused.retryable], ["nack", "SEQ_REUSED", false]);
  assert.match(reused.message as string, /seq 1 was already used for a record to topic "orders"/);
  assert.deepEqual(h.sent.map((r) => r.topic), ["orders"], "only the first publish reached the sink");
  const still = await h.publish("orders", 1);
  assert.equal(still.duplicate, true, "the refusals left the ledger's record of seq 1 as it was");
});

Deno.test("session: a sequenced publish refused before the sink leaves nothing in flight", async () => {
  const h = harness();
  await h.request({ op: "hello", clientId: "dev-2", instance: "run-1" });
  h.setKafkaUp(false);
  const down = await h.publish("orders", 1);
  assert.deepEqual([down.op, down.code], ["nack", "KAFKA_UNAVAILABLE"]);
  h.setKafkaUp(true);
  const retried = await h.publish("orders", 1);
  assert.deepEqual([retried.op, retried.duplicate], ["ack", undefined], "written, not PUBLISH_IN_FLIGHT");
  const denied = await h.publish("payments", 2);
  assert.equal(denied.code, "PUBLISH_DENIED");
  const second = await h.publish("orders", 2);
  assert.deepEqual([second.op, second.duplicate], ["ack", undefined]);
  assert.deepEqual(h.sent.map((r) => r.sequence?.seq), [1, 2]);
});

Deno.test("session: client headers named eb-* are refused; the bridge's own are written", async () => {
  const h = harness();
  await h.request({ op: "hello", clientId: "dev-3" });
  const forged = await h.request({
    op: "publish",
    topic: "orders",
    value: "x",
    headers: { "eb-principal": "alice" },
  });
  assert.deepEqual([forged.op, forged.code], ["nack", "BAD_FIELD"]);
  assert.match(forged.message as string, /header "eb-principal" is reserved/);
  const ok = await h.request({ op: "publish", topic: "orders", value: "x", headers: { trace: "t1" } });
  assert.equal(ok.op, "ack");
  assert.equal(h.sent.length, 1);
  const headers = h.sent[0].headers;
  assert.equal(headers.trace, "t1");
  assert.equal(headers["eb-client-id"], "dev-3");
  assert.equal(headers["eb-principal"], undefined, "anonymous records name no principal");
});

Deno.test("session: where the bridge accepts tokens, an anonymous hello must use the anonymous namespace", async () => {
  const key = { id: "alice", hash: `sha256:${"0".repeat(64)}` };
  const h = harness({ auth: { apiKeys: [key] } });
  for (const clientId of ["alice", "alice.s1", "dev-1"]) {
    const r = await h.request({ op: "hello", clientId });
    assert.deepEqual([r.op, r.code], ["error", "CLIENT_ID_DENIED"], clientId);
  }
  const ok = await h.request({ op: "hello", clientId: "anonymous.dev-1" });
  assert.deepEqual([ok.op, ok.clientId], ["hello_ok", "anonymous.dev-1"]);
  // Without tokens nobody can be impersonated: any clientId, as before.
  const open = harness();
  assert.equal((await open.request({ op: "hello", clientId: "alice" })).op, "hello_ok");
});

Deno.test("session: a refreshed token that allows less ends the subscriptions it no longer allows, and only those", async () => {
  const config = configSchema.parse({});
  const alice = (subscribe: string[], groups: string[]): Principal => ({
    id: "alice",
    kind: "jwt",
    permissions: new Permissions({ publish: [], subscribe, groups }),
    expiresAt: Date.now() + 600_000,
  });
  const principals: Record<string, Principal> = {
    wide: alice(["orders", "audit"], ["g"]),
    narrow: alice(["orders"], []),
    bob: { ...alice(["*"], ["*"]), id: "bob" },
  };
  const opened: SourceOptions[] = [];
  const stopped: SourceOptions[] = [];
  const { session, frames, settle } = sessionOver({
    config,
    topics: new TopicPolicy(config.topics),
    auth: {
      anonymousFor: () => undefined,
      authenticate: (token: string) => Promise.resolve({ ok: true, principal: principals[token] }),
    },
    catalog: {
      topic: () => Promise.resolve({ partitions: 1 }),
      endOffsets: () => Promise.resolve({ "0": "0" }),
    },
    source: {
      open: (opts: SourceOptions) => {
        opened.push(opts);
        return Promise.resolve({
          commit: () => Promise.resolve(),
          stop: () => (stopped.push(opts), Promise.resolve()),
        });
      },
    },
  }, "wide");
  const of = (sub: string) =>
    frames.filter((f) => f.sub === sub).map((f) => [f.op, f.code ?? f.reason ?? ""]);
  try {
    session.start();
    await settle();
    assert.equal(frames[0].op, "welcome");
    session.handleText(JSON.stringify({ op: "subscribe", id: "s1", sub: "o", topic: "orders" }));
    session.handleText(JSON.stringify({ op: "subscribe", id: "s2", sub: "a", topic: "audit" }));
    session.handleText(
      JSON.stringify({ op: "subscribe", id: "s3", sub: "g", topic: "orders", mode: "group", group: "g" }),
    );
    await settle();
    assert.deepEqual(frames.filter((f) => f.op === "subscribed").map((f) => f.sub).sort(), ["a", "g", "o"]);

    session.handleText(JSON.stringify({ op: "auth", id: "a1", token: "narrow" }));
    await settle();
    assert.equal(frames.find((f) => f.id === "a1")?.op, "auth_ok");
    assert.deepEqual(of("a").slice(1), [
      ["error", "SUBSCRIBE_DENIED"],
      [
        "unsubscribed",
        `"alice" may not subscribe to "audit": the refreshed token no longer allows this subscription`,
      ],
    ]);
    assert.deepEqual(of("g").slice(1).map(([op, code]) => [op, op === "error" ? code : "…"]), [
      ["error", "GROUP_DENIED"],
      ["unsubscribed", "…"],
    ]);
    assert.deepEqual(of("o"), [["subscribed", ""]], "a subscription still allowed goes on");
    assert.deepEqual(stopped.map((o) => o.topic).sort(), ["audit", "orders"], "the two consumers left Kafka");
    const ofO = opened.find((o) => o.topic === "orders" && o.mode === "broadcast")!;
    assert.ok(!stopped.includes(ofO), "not the one of sub o");

    session.handleText(JSON.stringify({ op: "subscribe", id: "s4", sub: "a", topic: "audit" }));
    session.handleText(JSON.stringify({ op: "auth", id: "a2", token: "bob" }));
    await settle();
    assert.equal(frames.find((f) => f.id === "s4")?.code, "SUBSCRIBE_DENIED");
    assert.equal(frames.find((f) => f.id === "a2")?.code, "AUTH_CLAIMS", "a token for another principal");
    session.handleText(JSON.stringify({ op: "unsubscribe", id: "u1", sub: "o" }));
    await settle();
    assert.equal(frames.find((f) => f.id === "u1")?.op, "unsubscribed", "sub o outlived both refreshes");
  } finally {
    await session.closed();
  }
});

Deno.test("session: a commit whose message is delivered while Kafka is asked about it is committed, not refused", async () => {
  const config = configSchema.parse({ auth: { anonymous: "enabled" } });
  let deliver: DeliverFn | undefined;
  let assigned: ((partitions: number[]) => void) | undefined;
  const committed: string[] = [];
  const lookup = Promise.withResolvers<string | undefined>();
  const { session, frames, settle } = sessionOver({
    config,
    topics: new TopicPolicy(config.topics),
    auth: new Authenticator(config.auth, "127.0.0.1", undefined),
    catalog: {
      topic: () => Promise.resolve({ partitions: 1 }),
      // The group's committed offset: answered only once the test says so.
      groupCommitted: () => lookup.promise,
    },
    source: {
      open: (_opts: SourceOptions, d: DeliverFn, events: SourceEvents) => {
        deliver = d;
        assigned = events.onAssignment;
        return Promise.resolve({
          commit: (
            partition: number,
            offset: string,
          ) => (committed.push(`${partition}/${offset}`), Promise.resolve()),
          stop: () => Promise.resolve(),
        });
      },
    },
  });
  const record = (offset: string) => ({
    topic: "orders",
    partition: 0,
    offset,
    timestamp: "0",
    key: null,
    value: new TextEncoder().encode(`v${offset}`),
    headers: {},
  });
  try {
    session.start();
    session.handleText(
      JSON.stringify({
        op: "subscribe",
        id: "s1",
        sub: "g",
        topic: "orders",
        mode: "group",
        group: "g",
        credit: 10,
      }),
    );
    await settle();
    assert.equal(frames.find((f) => f.id === "s1")?.op, "subscribed");
    assigned!([0]);
    assert.equal(await deliver!(record("4")), true);

    // A client back on a new link commits offset 5, delivered on its old link: not delivered here.
    session.handleText(JSON.stringify({ op: "commit", id: "c1", sub: "g", partition: 0, offset: "5" }));
    await settle();
    // While the bridge asks Kafka whether the group holds that commit, the group redelivers it.
    assert.equal(await deliver!(record("5")), true);
    lookup.resolve("3"); // Kafka: the group's next offset is 3, so offset 5 is not committed yet
    await settle();
    const answer = frames.find((f) => f.id === "c1");
    assert.equal(answer?.op, "committed", `answered ${JSON.stringify(answer)}`);
    assert.deepEqual(committed, ["0/5"]);

    // A commit for an offset not delivered at all is still refused.
    session.handleText(JSON.stringify({ op: "commit", id: "c2", sub: "g", partition: 0, offset: "9" }));
    await settle();
    assert.equal(frames.find((f) => f.id === "c2")?.code, "OFFSET_NOT_DELIVERED");
  } finally {
    await session.closed();
  }
});

Deno.test("session: an HA drain leaves group consumers to stop in the background; a shutdown drain waits for them", async () => {
  for (const leaveGroups of ["background", "await"] as const) {
    const config = configSchema.parse({ auth: { anonymous: "enabled" } });
    const left = Promise.withResolvers<void>(); // a consumer stuck in a JoinGroup: it leaves when the test says
    let stopCalled = false;
    const budget = new ConsumerBudget(1);
    const { session, frames, settle } = sessionOver({
      config,
      consumers: budget,
      topics: new TopicPolicy(config.topics),
      auth: new Authenticator(config.auth, "127.0.0.1", undefined),
      catalog: { topic: () => Promise.resolve({ partitions: 1 }) },
      source: {
        open: () =>
          Promise.resolve({
            commit: () => Promise.resolve(),
            stop: () => ((stopCalled = true), left.promise),
          }),
      },
    });
    session.start();
    session.handleText(
      JSON.stringify({ op: "subscribe", id: "s1", sub: "g", topic: "orders", mode: "group", group: "g" }),
    );
    await settle();
    assert.equal(frames.find((f) => f.id === "s1")?.op, "subscribed");
    let drained = false;
    const drain = session.drain(performance.now() + 1_000, undefined, leaveGroups).then(
      () => (drained = true),
    );
    await settle();
    assert.ok(stopCalled, `${leaveGroups}: the consumer was told to stop`);
    assert.equal(drained, leaveGroups === "background", `${leaveGroups}: drained before the consumer left?`);
    assert.equal(
      budget.inUse,
      1,
      "a consumer still leaving its group keeps its place in the bridge's budget",
    );
    left.resolve();
    await drain;
    await settle();
    assert.equal(budget.inUse, 0);
    await session.closed();
  }
});
