import assert from "node:assert/strict";
import type { Delivery } from "../kafka/types.ts";
import type { MessageFrame } from "../protocol/mod.ts";
import { Subscription } from "./subscription.ts";

function setup(credit = 0, serving = () => true) {
  const sent: MessageFrame[] = [];
  let pending = 0;
  const s = new Subscription("s1", "t", "group", "utf8", credit, {
    maxCredit: 100,
    maxBufferedBytes: 1 << 20,
    policy: "pause",
    stallTimeoutMs: 1000,
  }, {
    send: (f) => sent.push(f),
    bufferedAmount: () => 0,
    serving,
    onStalled: () => {},
    onPendingChange: (d) => (pending += d),
  });
  return { s, sent, pending: () => pending };
}

const delivery = (offset: string): Delivery => ({
  topic: "t",
  partition: 0,
  offset,
  timestamp: "0",
  key: null,
  value: new TextEncoder().encode(`v${offset}`),
  headers: {},
});

Deno.test("subscription: a message waiting for credit goes out on the next grant", async () => {
  const { s, sent, pending } = setup(0);
  const p = s.deliver(delivery("1"));
  assert.equal(pending(), 1);
  s.grant(1);
  assert.equal(await p, true);
  assert.deepEqual(sent.map((f) => f.offset), ["1"]);
  assert.equal(pending(), 0);
  s.stop();
});

Deno.test("subscription: a waiting message whose batch was revoked is dropped, never sent on a later grant", async () => {
  const { s, sent, pending } = setup(0);
  const cancel = new AbortController();
  const p = s.deliver(delivery("7"), cancel.signal);
  cancel.abort(); // the source saw its batch go stale (a rebalance)
  assert.equal(await p, false);
  assert.equal(pending(), 0, "the pending count does not drift");
  s.grant(5);
  assert.deepEqual(sent, [], "the revoked partition's message is not sent");
  s.stop();
});

Deno.test("subscription: a new delivery supersedes one still waiting, which is answered, not leaked", async () => {
  const { s, sent, pending } = setup(0);
  const first = s.deliver(delivery("1"));
  const second = s.deliver(delivery("2"));
  assert.equal(await first, false);
  assert.equal(pending(), 1);
  s.grant(2);
  assert.equal(await second, true);
  assert.deepEqual(sent.map((f) => f.offset), ["2"]);
  assert.equal(pending(), 0);
  s.stop();
});

Deno.test("subscription: stop answers a waiting message and keeps the count straight", async () => {
  const { s, pending } = setup(0);
  const p = s.deliver(delivery("1"));
  s.stop();
  assert.equal(await p, false);
  assert.equal(pending(), 0);
  assert.equal(await s.deliver(delivery("2")), false);
});

Deno.test("subscription: a node that may not serve (HA, not the live) delivers nothing, waiting or new", async () => {
  let live = true;
  const { s, sent, pending } = setup(0, () => live);
  const waiting = s.deliver(delivery("1")); // fetched before the node lost the role, waiting for credit
  live = false;
  s.grant(5);
  assert.equal(await waiting, false, "dropped, not sent");
  assert.equal(await s.deliver(delivery("2")), false);
  assert.deepEqual(sent, []);
  assert.equal(pending(), 0);
});
