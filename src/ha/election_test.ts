import assert from "node:assert/strict";
import {
  HandoverBudget,
  handoverReason,
  isBestCandidate,
  losesLiveConflict,
  type NodeView,
} from "./election.ts";

const view = (node: string, o: Partial<NodeView> = {}): NodeView => ({
  node,
  priority: 100,
  role: "backup",
  epoch: 1,
  kafkaUp: true,
  readyForMs: 0,
  ...o,
});
const rules = { allowFailback: true, failbackHoldDownMs: 5000, kafkaLossTimeoutMs: 3000 };

Deno.test("election: Kafka reachability, then priority, then node id", () => {
  assert.ok(isBestCandidate(view("a", { priority: 200 }), [view("b")]));
  assert.ok(!isBestCandidate(view("b"), [view("a", { priority: 200 })]));
  assert.ok(isBestCandidate(view("a"), [view("b")]), "equal priority: lower id wins");
  assert.ok(!isBestCandidate(view("a", { priority: 200, kafkaUp: false }), [view("b")]), "Kafka first");
  assert.ok(isBestCandidate(view("b"), [view("a", { role: "live" })]), "lives are not candidates");
});

Deno.test("election: two lives resolve by epoch, then node id", () => {
  assert.ok(losesLiveConflict(view("a", { epoch: 3 }), view("b", { epoch: 4 })));
  assert.ok(!losesLiveConflict(view("b", { epoch: 4 }), view("a", { epoch: 3 })));
  assert.ok(losesLiveConflict(view("b", { epoch: 4 }), view("a", { epoch: 4 })));
});

Deno.test("election: Kafka loss hands over only to a backup that reaches Kafka", () => {
  const live = view("a", { role: "live", kafkaUp: false });
  assert.equal(handoverReason(live, 1000, [view("b")], rules), undefined, "not before the timeout");
  assert.equal(handoverReason(live, 4000, [view("b", { readyForMs: 10_000 })], rules)?.to, "b");
  assert.equal(
    handoverReason(live, 4000, [view("b", { readyForMs: 500 })], rules),
    undefined,
    "a backup that only just reconnected (a shared outage) is no reason to move",
  );
  assert.equal(
    handoverReason(live, 4000, [view("b", { kafkaUp: false })], rules),
    undefined,
    "both lost Kafka: nobody moves",
  );
});

Deno.test("election: failback to a higher-priority backup after the hold-down", () => {
  const live = view("b", { role: "live", priority: 50 });
  assert.equal(handoverReason(live, 0, [view("a", { priority: 100, readyForMs: 1000 })], rules), undefined);
  assert.equal(handoverReason(live, 0, [view("a", { priority: 100, readyForMs: 6000 })], rules)?.to, "a");
  assert.equal(
    handoverReason(live, 0, [view("a", { priority: 100, readyForMs: 6000 })], {
      ...rules,
      allowFailback: false,
    }),
    undefined,
  );
  assert.equal(
    handoverReason(live, 0, [view("c", { priority: 10, readyForMs: 9000 })], rules),
    undefined,
    "never to a lower priority",
  );
});

Deno.test("election: the handover budget damps flapping", () => {
  const b = new HandoverBudget(2);
  assert.ok(b.allows(0));
  b.record(0);
  b.record(1000);
  assert.ok(!b.allows(2000));
  assert.ok(b.allows(61_000));
});
