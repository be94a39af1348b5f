import assert from "node:assert/strict";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { HaNode } from "./node.ts";

Deno.test("ha node: a re-activation queued behind a step-down never takes the id back", async () => {
  const calls: string[] = [];
  let releaseDrain: (() => void) | undefined;
  let active = true;
  const node = new HaNode(
    "n",
    100,
    undefined,
    "role",
    {
      activate: () => {
        calls.push("activate");
        active = true;
        return Promise.resolve();
      },
      drain: () => {
        calls.push("drain");
        return new Promise<void>((r) => (releaseDrain = r));
      },
      deactivate: () => {
        calls.push("deactivate");
        active = false;
        return Promise.resolve();
      },
      isActive: () => active,
    },
    new BridgeMetrics(),
    createLogger("silent", "n"),
  );
  assert.ok(await node.promote(1, "test"));
  active = false; // the sink asks for a fresh producer epoch...
  const stepDown = node.demote("a peer took over"); // ...while the node is stepping down:
  const reactivation = node.reactivate(); // same tick, so the role still reads "live"; it queues behind
  while (!releaseDrain) await new Promise((r) => setTimeout(r, 1));
  releaseDrain();
  await Promise.all([stepDown, reactivation]);
  assert.equal(node.role(), "backup");
  assert.deepEqual(calls, ["activate", "drain", "deactivate"], "no activate after the step-down");
});

Deno.test("ha node: a live node whose producer needs a fresh epoch re-activates", async () => {
  let activations = 0, active = false;
  const node = new HaNode(
    "n",
    100,
    undefined,
    "role",
    {
      activate: () => (activations++, active = true, Promise.resolve()),
      drain: () => Promise.resolve(),
      deactivate: () => Promise.resolve(),
      isActive: () => active,
    },
    new BridgeMetrics(),
    createLogger("silent", "n"),
  );
  await node.promote(1, "test");
  active = false;
  await node.reactivate();
  assert.equal(activations, 2);
  await node.reactivate(); // already active: nothing to do
  assert.equal(activations, 2);
});
