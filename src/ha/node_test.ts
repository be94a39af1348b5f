import assert from "node:assert/strict";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { type HaActions, HaNode, type HaTimeouts } from "./node.ts";

function node(actions: Partial<HaActions>, timeouts?: HaTimeouts) {
  const calls: string[] = [];
  let epochs = 40;
  const n = new HaNode(
    "n",
    100,
    undefined,
    "role",
    {
      activate: () => (calls.push("activate"), Promise.resolve(++epochs)),
      drain: () => (calls.push("drain"), Promise.resolve()),
      deactivate: () => (calls.push("deactivate"), Promise.resolve()),
      abandon: () => (calls.push("abandon"), ["the producer"]),
      dropProducer: () => void calls.push("dropProducer"),
      isActive: () => true,
      ...actions,
    },
    new BridgeMetrics(),
    createLogger("silent", "n"),
    timeouts,
  );
  return { node: n, calls };
}

Deno.test("ha node: a re-activation queued behind a step-down never takes the id back", async () => {
  let releaseDrain: (() => void) | undefined;
  let active = true;
  const { node: n, calls } = node({
    drain: () => {
      calls.push("drain");
      return new Promise<void>((r) => (releaseDrain = r));
    },
    isActive: () => active,
  });
  assert.ok(await n.promote("test"));
  active = false; // the sink asks for a fresh producer epoch...
  const stepDown = n.demote("a peer took over"); // ...while the node is stepping down:
  const reactivation = n.reactivate(); // same tick, so the role still reads "live"; it queues behind
  while (!releaseDrain) await new Promise((r) => setTimeout(r, 1));
  releaseDrain();
  await Promise.all([stepDown, reactivation]);
  assert.equal(n.role(), "backup");
  assert.deepEqual(calls, ["activate", "drain", "deactivate"], "no activate after the step-down");
});

Deno.test("ha node: the epoch is the one the activation got from Kafka, and a re-activation's replaces it", async () => {
  let active = true;
  const { node: n, calls } = node({ isActive: () => active });
  const seen: number[] = [];
  n.onRoleChange = (_role, epoch) => seen.push(epoch);
  await n.promote("test");
  assert.equal(n.epoch(), 41);
  active = false;
  await n.reactivate();
  assert.equal(n.epoch(), 42);
  assert.deepEqual(seen, [0, 41, 42], "activating, live, re-activated");
  active = true;
  await n.reactivate(); // already active: nothing to do
  assert.deepEqual(calls, ["activate", "activate"]);
});

Deno.test("ha node: a step-down whose deactivate hangs is abandoned at its deadline, and ends as backup", async () => {
  const { node: n, calls } = node({
    deactivate: () => (calls.push("deactivate"), new Promise<void>(() => {})), // Kafka drops packets
  }, { stepDownTimeoutMs: 50, activationTimeoutMs: 1_000 });
  await n.promote("test");
  const started = performance.now();
  await n.demote("failback");
  assert.equal(n.role(), "backup");
  assert.ok(performance.now() - started < 1_000, "bounded by the deadline, not by Kafka");
  assert.deepEqual(calls, ["activate", "drain", "deactivate", "abandon"]);
  assert.equal(n.busy, false);
});

Deno.test("ha node: a drain that throws still ends in a defined role; demote never rejects", async () => {
  const { node: n, calls } = node({
    drain: () => Promise.reject(new Error("socket gone")),
    deactivate: () => (calls.push("deactivate"), Promise.reject(new Error("Kafka said no"))),
  });
  await n.promote("test");
  await n.demote("a peer took over", "fenced");
  assert.equal(n.role(), "backup", "fenced, then backup");
  assert.ok(n.fencedAt !== undefined);
  assert.deepEqual(calls, ["activate", "deactivate"], "deactivate runs even though the drain failed");
});

Deno.test("ha node: an activation past its deadline drops the producer, holds the claim until Kafka answers, then is backup", async () => {
  let finish!: (epoch: number) => void;
  const { node: n, calls } = node({
    activate: () => (calls.push("activate"), new Promise<number>((r) => (finish = r))),
  }, { stepDownTimeoutMs: 1_000, activationTimeoutMs: 30 });
  const promoting = n.promote("slow Kafka");
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(calls, ["activate", "dropProducer"]);
  assert.equal(n.role(), "activating", "the claim is held while the request sent may still land");
  finish(9); // Kafka answers after all
  assert.equal(await promoting, false);
  assert.equal(n.role(), "backup");
  assert.equal(n.epoch(), 0, "never served under the late epoch");
});

Deno.test("ha node: from the moment a step-down is requested the node serves nothing, even queued behind an activation", async () => {
  let finish!: (epoch: number) => void;
  let active = true;
  const { node: n, calls } = node({ isActive: () => active });
  await n.promote("test");
  active = false; // the producer needs a fresh epoch
  n.actions.activate = () => (calls.push("activate"), new Promise<number>((r) => (finish = r)));
  const renewing = n.reactivate();
  await new Promise((r) => setTimeout(r, 1));
  const stepDown = n.demote("stalled");
  assert.equal(n.role(), "draining", "requested, not yet running: already not serving");
  assert.equal(n.isLive, false);
  finish(77);
  await Promise.all([renewing, stepDown]);
  assert.equal(n.role(), "backup");
  assert.notEqual(
    n.epoch(),
    77,
    "a re-activation that finished after the step-down was asked for is not adopted",
  );
  assert.ok(calls.includes("dropProducer"));
});

Deno.test("ha node: a fencing reported after the node let go marks it fenced and keeps its role", async () => {
  const { node: n } = node({});
  await n.promote("test");
  await n.demote("failback");
  await n.demote("INVALID_PRODUCER_EPOCH", "fenced");
  assert.equal(n.role(), "backup");
  assert.ok(n.fencedAt !== undefined);
});

Deno.test("ha node: a live whose stall watch is overdue does not serve, before any timer has run", async () => {
  const { node: n } = node({});
  await n.promote("test");
  n.watched(performance.now(), 200);
  assert.equal(n.role(), "live");
  n.watched(performance.now() - 1_000, 200); // as if the process was stopped for a second
  assert.equal(n.role(), "draining");
  assert.equal(n.isLive, false);
  n.watched(performance.now(), 200); // the watch ran again (and started the step-down)
  assert.equal(n.role(), "live");
});
