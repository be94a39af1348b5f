import assert from "node:assert/strict";
import { SubscriptionError } from "./errors.ts";
import type { InboundFrame } from "./link.ts";
import { type Message, type SubscribeOptions, Subscription, type SubscriptionHost } from "./subscription.ts";

function setup(opts: SubscribeOptions = {}, maxCredit = 10_000) {
  const sent: Record<string, unknown>[] = [];
  const logs: string[] = [];
  let ids = 0, retries = 0, forgotten = false;
  /** What afterRetryDelay was asked to run; the test runs it when "the delay is over". */
  const delayed: Array<() => void> = [];
  const host: SubscriptionHost = {
    send: (f) => (sent.push(f), true),
    nextId: () => `r${++ids}`,
    maxCredit: () => maxCredit,
    log: (level, m) => logs.push(`${level} ${m}`),
    retryLater: () => retries++,
    afterRetryDelay: (run) => delayed.push(run),
    forget: () => (forgotten = true),
  };
  const sub = new Subscription("s1", "t", opts, host);
  const last = (op: string) => sent.filter((f) => f.op === op).at(-1) as Record<string, unknown>;
  const subscribed = (extra: Record<string, unknown> = {}) =>
    sub.handle(
      {
        op: "subscribed",
        id: last("subscribe").id,
        sub: "s1",
        topic: "t",
        mode: "broadcast",
        ...extra,
      } as InboundFrame,
    );
  const message = (partition: number, offset: string) =>
    sub.handle(
      {
        op: "message",
        sub: "s1",
        topic: "t",
        partition,
        offset,
        timestamp: "1",
        key: null,
        keyEncoding: "utf8",
        value: `v${partition}-${offset}`,
        encoding: "utf8",
        headers: {},
      } as InboundFrame,
    );
  return {
    sub,
    sent,
    logs,
    last,
    subscribed,
    message,
    delayed,
    retries: () => retries,
    forgotten: () => forgotten,
  };
}
const credits = (sent: Record<string, unknown>[]) => sent.filter((f) => f.op === "credit").map((f) => f.n);

Deno.test("Subscription: subscribes with its window (capped by maxCredit) and grants back in half-window batches", async () => {
  const { sub, sent, subscribed, message } = setup({ credit: 4, from: "earliest" }, 10_000);
  sub.attach();
  assert.deepEqual(sent[0], {
    op: "subscribe",
    id: "r1",
    sub: "s1",
    topic: "t",
    mode: "broadcast",
    from: "earliest",
    credit: 4,
    encoding: "utf8",
  });
  subscribed();
  for (let i = 0; i < 4; i++) message(0, String(i));
  assert.deepEqual(credits(sent), []); // nothing consumed yet: the bridge has no credit left
  const it = sub[Symbol.asyncIterator]();
  assert.equal(((await it.next()).value as Message).offset, "0");
  assert.deepEqual(credits(sent), []);
  assert.equal(((await it.next()).value as Message).offset, "1");
  assert.deepEqual(credits(sent), [2]);

  const capped = setup({ credit: 500 }, 50);
  capped.sub.attach();
  assert.equal(capped.sent[0].credit, 50);
});

Deno.test("Subscription: on a new link, resumes past what it handed over and drops replays (granting their credit)", async () => {
  const { sub, sent, last, subscribed, message } = setup({ credit: 4, from: "earliest" });
  sub.attach();
  subscribed({ start: { "0": "0", "1": "10" } });
  message(0, "0");
  message(1, "10");
  message(0, "1"); // buffered, not consumed yet: it still counts as handed over
  const it = sub[Symbol.asyncIterator]();
  await it.next();
  sub.detach();
  sub.attach();
  // 2 messages still buffered: the bridge may send only 2 more
  assert.deepEqual(
    { from: last("subscribe").from, credit: last("subscribe").credit },
    { from: { offsets: { "0": "2", "1": "11" } }, credit: 2 },
  );
  subscribed();
  message(0, "1"); // replay
  message(1, "10"); // replay
  assert.deepEqual(credits(sent), [2]);
  message(0, "2");
  const got = [];
  for (let i = 0; i < 3; i++) got.push(((await it.next()).value as Message).offset);
  assert.deepEqual(got, ["10", "1", "2"]);
});

Deno.test("Subscription: group mode resubscribes with the original from; replays are still dropped", () => {
  const { sub, sent, last, subscribed, message } = setup({
    mode: "group",
    group: "g",
    credit: 2,
    from: "earliest",
  });
  sub.attach();
  subscribed();
  message(0, "5");
  sub.detach();
  sub.attach();
  assert.equal(last("subscribe").from, "earliest");
  assert.equal(last("subscribe").group, "g");
  subscribed();
  message(0, "5");
  assert.deepEqual(credits(sent), [1]);
});

Deno.test("Subscription: commits resolve on committed; the highest unconfirmed one is resent after a reconnect", async () => {
  const { sub, sent, last, subscribed, message } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "5");
  message(0, "6");
  const c5 = sub.commit({ partition: 0, offset: "5" });
  const c6 = sub.commit({ partition: 0, offset: "6" });
  assert.deepEqual(sent.filter((f) => f.op === "commit").map((f) => f.offset), ["5", "6"]);
  sub.handle(
    { op: "committed", id: last("commit").id, sub: "s1", partition: 0, offset: "5" } as InboundFrame,
  );
  await c5;
  sub.detach();
  sub.attach();
  assert.equal(sent.filter((f) => f.op === "commit").length, 2); // not before `subscribed`
  subscribed();
  const resent = last("commit");
  assert.deepEqual({ partition: resent.partition, offset: resent.offset }, { partition: 0, offset: "6" });
  sub.handle({ op: "committed", id: resent.id, sub: "s1", partition: 0, offset: "6" } as InboundFrame);
  await c6;
});

Deno.test("Subscription: a commit refused retryably (a rebalance) is resent after a delay; a final refusal rejects", async () => {
  const { sub, sent, last, logs, subscribed, message, delayed } = setup({ mode: "group", group: "g" });
  const commits = () => sent.filter((f) => f.op === "commit").map((f) => `${f.partition}@${f.offset}`);
  sub.attach();
  subscribed();
  for (const o of ["5", "6"]) message(0, o);
  message(1, "3");
  let settled = "";
  const c5 = sub.commit({ partition: 0, offset: "5" }).then(() => (settled += "5"));
  const c6 = sub.commit({ partition: 0, offset: "6" }).then(() => (settled += "6"));
  const refuse = (id: unknown, code: string, retryable: boolean) =>
    sub.handle(
      { op: "error", id, sub: "s1", code, message: "generation id is not valid", retryable } as InboundFrame,
    );
  const [r5, r6] = sent.filter((f) => f.op === "commit").map((f) => f.id);
  refuse(r5, "KAFKA_UNAVAILABLE", true);
  refuse(r6, "KAFKA_UNAVAILABLE", true);
  await Promise.resolve();
  assert.equal(settled, "", "a retryable refusal is not an answer");
  assert.equal(delayed.length, 1, "one resend per partition covers both refusals");
  assert.match(
    logs.at(-1)!,
    /^warn commit of "t" partition 0 refused for now \(KAFKA_UNAVAILABLE: .*\); retrying$/,
  );
  delayed.shift()!();
  assert.deepEqual(commits(), ["0@5", "0@6", "0@6"], "the highest unconfirmed offset is resent");
  sub.handle(
    { op: "committed", id: last("commit").id, sub: "s1", partition: 0, offset: "6" } as InboundFrame,
  );
  await Promise.all([c5, c6]);
  assert.equal(settled, "56");

  // A retry due after the link dropped is not sent; the new link resends once the message is
  // delivered there again (the bridge takes commits only for offsets delivered on it).
  const c3 = sub.commit({ partition: 1, offset: "3" });
  refuse(last("commit").id, "KAFKA_UNAVAILABLE", true);
  sub.detach();
  delayed.shift()!();
  assert.deepEqual(commits().slice(3), ["1@3"], "nothing sent without a link");
  sub.attach();
  subscribed();
  assert.deepEqual(commits().slice(3), ["1@3", "1@3"], "sent once on the new link");
  // A refusal that is final rejects the commits it covers.
  refuse(last("commit").id, "BAD_FIELD", false);
  await assert.rejects(c3, (e) => e instanceof SubscriptionError && e.code === "BAD_FIELD");
  assert.equal(delayed.length, 0);
});

Deno.test("Subscription: broadcast commits resolve at once (the SDK keeps broadcast positions)", async () => {
  const { sub, sent } = setup();
  await sub.commit({ partition: 0, offset: "1" });
  assert.equal(sent.filter((f) => f.op === "commit").length, 0);
});

Deno.test("Subscription: skipped records raise an event and a log line", () => {
  const { sub, logs, subscribed } = setup();
  sub.attach();
  subscribed();
  const seen: unknown[] = [];
  sub.addEventListener("skipped", (e) => seen.push(e.detail));
  sub.handle(
    {
      op: "skipped",
      sub: "s1",
      topic: "t",
      partition: 0,
      from: "3",
      to: "12",
      reason: "retention",
    } as InboundFrame,
  );
  assert.deepEqual(seen, [{ topic: "t", partition: 0, from: "3", to: "12", reason: "retention" }]);
  assert.match(logs.join("\n"), /offsets 3 to 12 \(exclusive\) were skipped: retention/);
});

Deno.test("Subscription: a subscription ended by the bridge for good makes the iterator throw, after buffered messages", async () => {
  const { sub, subscribed, message, forgotten } = setup();
  sub.attach();
  subscribed();
  message(0, "0");
  sub.handle(
    { op: "error", sub: "s1", code: "SUBSCRIBE_DENIED", message: "gone", retryable: false } as InboundFrame,
  );
  sub.handle({ op: "unsubscribed", sub: "s1", reason: "no longer allowed" } as InboundFrame);
  const it = sub[Symbol.asyncIterator]();
  assert.equal(((await it.next()).value as Message).offset, "0");
  await assert.rejects(
    () => it.next(),
    (e) =>
      e instanceof SubscriptionError && e.code === "SUBSCRIBE_DENIED" && /no longer allowed/.test(e.message),
  );
  assert.equal(forgotten(), true);
});

Deno.test("Subscription: a non-retryable refusal fails it; a retryable one is retried", async () => {
  const bad = setup();
  bad.sub.attach();
  bad.sub.handle(
    {
      op: "error",
      id: "r1",
      sub: "s1",
      code: "UNKNOWN_TOPIC",
      message: "no such topic",
      retryable: false,
    } as InboundFrame,
  );
  await assert.rejects(
    () => bad.sub.ready(),
    (e) => e instanceof SubscriptionError && e.code === "UNKNOWN_TOPIC",
  );
  await assert.rejects(() => bad.sub[Symbol.asyncIterator]().next(), /no such topic/);

  const later = setup();
  later.sub.attach();
  later.sub.handle(
    {
      op: "error",
      id: "r1",
      sub: "s1",
      code: "KAFKA_UNAVAILABLE",
      message: "down",
      retryable: true,
    } as InboundFrame,
  );
  assert.equal(later.retries(), 1);
  assert.equal(later.sub.error, undefined);
});

Deno.test("Subscription: close waits for pending commits, then unsubscribes, and ends the iteration", async () => {
  const { sub, sent, last, subscribed, message } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "1");
  const it = sub[Symbol.asyncIterator]();
  await it.next();
  const commit = sub.commit({ partition: 0, offset: "1" });
  const closed = sub.close();
  assert.equal(sent.filter((f) => f.op === "unsubscribe").length, 0);
  sub.handle(
    { op: "committed", id: last("commit").id, sub: "s1", partition: 0, offset: "1" } as InboundFrame,
  );
  await commit;
  assert.equal(last("unsubscribe").sub, "s1");
  sub.handle({ op: "unsubscribed", id: last("unsubscribe").id, sub: "s1" } as InboundFrame);
  await closed;
  assert.deepEqual(await it.next(), { done: true, value: undefined });
});

Deno.test("Subscription: a commit from an earlier link waits for its redelivery, then goes out", async () => {
  const { sub, sent, last, subscribed, message } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "4");
  const commit = sub.commit({ partition: 0, offset: "4" });
  assert.equal(sent.filter((f) => f.op === "commit").length, 1, "delivered on this link: sent at once");
  sub.detach(); // the link dropped before `committed`
  sub.attach();
  subscribed();
  // Sent once at once (Kafka may hold it already: the bridge then answers `committed`)...
  const first = last("commit");
  assert.deepEqual([sent.filter((f) => f.op === "commit").length, first.offset], [2, "4"]);
  sub.handle({
    op: "error",
    id: first.id,
    sub: "s1",
    code: "OFFSET_NOT_DELIVERED",
    message: "nothing delivered yet",
    retryable: false,
  } as InboundFrame);
  // ...and, refused as not delivered on this link, again once the group redelivers it here.
  message(0, "3"); // the group redelivers from the last commit: 3 is below 4
  assert.equal(sent.filter((f) => f.op === "commit").length, 2);
  message(0, "4"); // a replay, dropped for the application, and now delivered here
  const resent = last("commit");
  assert.deepEqual([sent.filter((f) => f.op === "commit").length, resent.offset], [3, "4"]);
  sub.handle({ op: "committed", id: resent.id, sub: "s1", partition: 0, offset: "4" } as InboundFrame);
  await commit;
  // A refusal because the partition moved on keeps the commit pending for the next redelivery.
  message(0, "5");
  const later = sub.commit({ partition: 0, offset: "5" });
  const refused = last("commit");
  sub.handle({
    op: "error",
    id: refused.id,
    sub: "s1",
    code: "PARTITION_NOT_ASSIGNED",
    message: "moved",
    retryable: false,
  } as InboundFrame);
  message(0, "5");
  const again = last("commit");
  assert.notEqual(again.id, refused.id, "sent again after the partition came back");
  sub.handle({ op: "committed", id: again.id, sub: "s1", partition: 0, offset: "5" } as InboundFrame);
  await later;
});

Deno.test("Subscription: closed while resubscribing, a commit the bridge cannot take is rejected NOT_COMMITTED, then it unsubscribes", async () => {
  const { sub, sent, last, subscribed, message } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "4");
  const commit = sub.commit({ partition: 0, offset: "4" });
  sub.detach(); // the link dropped before `committed`
  sub.attach(); // a new link: `subscribe` is in flight (a group join can take a while)
  const closed = sub.close();
  subscribed();
  const resent = last("commit");
  assert.equal(
    sent.filter((f) => f.op === "unsubscribe").length,
    0,
    "not before the resent commit is answered",
  );
  sub.handle({
    op: "error",
    id: resent.id,
    sub: "s1",
    code: "OFFSET_NOT_DELIVERED",
    message: "nothing delivered yet",
    retryable: false,
  } as InboundFrame);
  await assert.rejects(commit, (e: SubscriptionError) => e.code === "NOT_COMMITTED");
  sub.handle({ op: "unsubscribed", id: last("unsubscribe").id, sub: "s1" } as InboundFrame);
  await closed;
});

Deno.test("Subscription: ended by the bridge for a reason that passes (its consumer failed), it subscribes again; for good, it fails", () => {
  const { sub, sent, logs, subscribed, message, retries } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "5");
  const pending = sub.commit({ partition: 0, offset: "5" });
  const end = (code: string, retryable: boolean) => {
    sub.handle(
      { op: "error", sub: "s1", code, message: "Kafka consumer failed: boom", retryable } as InboundFrame,
    );
    sub.handle({ op: "unsubscribed", sub: "s1", reason: "Kafka consumer failed: boom" } as InboundFrame);
  };
  end("KAFKA_UNAVAILABLE", true);
  assert.equal(retries(), 1, "subscribes again after a delay");
  assert.equal(sub.error, undefined, "the iteration goes on");
  assert.match(logs.at(-1)!, /^warn the bridge ended the subscription to "t": .*; subscribing again$/);
  sub.attach(); // what the client does when the delay is over
  subscribed();
  assert.deepEqual(
    sent.filter((f) => f.op === "commit").map((f) => f.offset),
    ["5", "5"],
    "the pending commit goes out once on the new subscription",
  );
  void pending.catch(() => {});

  end("SUBSCRIBE_DENIED", false);
  assert.equal(retries(), 1);
  const failed: SubscriptionError | undefined = (sub as { error?: SubscriptionError }).error;
  assert.ok(failed instanceof SubscriptionError);
  assert.equal(failed.code, "SUBSCRIBE_DENIED");
});

Deno.test("Subscription: a commit that reaches the bridge after it ended the subscription (a drain) stays pending for the next link", async () => {
  const { sub, sent, subscribed, message } = setup({ mode: "group", group: "g" });
  sub.attach();
  subscribed();
  message(0, "7");
  let settled = false;
  const c = sub.commit({ partition: 0, offset: "7" }).then(() => (settled = true));
  const commit = sent.filter((f) => f.op === "commit").at(-1)!;
  sub.handle({
    op: "error",
    id: commit.id,
    sub: "s1",
    code: "UNKNOWN_SUBSCRIPTION",
    message: 'no active subscription "s1"',
    retryable: false,
  } as InboundFrame);
  await Promise.resolve();
  assert.equal(settled, false, "not an answer: the commit is still pending");
  assert.equal(sub.error, undefined);
  sub.detach(); // the drain closes the link
  sub.attach();
  subscribed();
  const resent = sent.filter((f) => f.op === "commit").at(-1)!;
  assert.notEqual(resent.id, commit.id);
  sub.handle({ op: "committed", id: resent.id, sub: "s1", partition: 0, offset: "7" } as InboundFrame);
  await c;
  assert.equal(settled, true);
});
