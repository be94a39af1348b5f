import assert from "node:assert/strict";
import { configSchema } from "../config/schema.ts";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { BaseCoordinator } from "./coordinator.ts";
import { HaNode } from "./node.ts";

/** A coordinator whose loop does nothing: the test begins transitions itself. */
class BareCoordinator extends BaseCoordinator {
  shutdownAt?: number;
  /** Whether the node read as live when shutdown began. */
  liveAtShutdown?: boolean;
  stallMs = 60_000;
  protected tick(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    this.shutdownAt = performance.now();
    this.liveAtShutdown = this.ha.isLive;
    return Promise.resolve();
  }
  protected stallLimitMs(): number {
    return this.stallMs;
  }
  protected onStall(): void {}
  protected claimConfirmed(): boolean {
    return false;
  }
  start<T>(transition: Promise<T>, then?: (r: T) => Promise<void> | void): void {
    this.begin(transition, then);
  }
  get busy(): boolean {
    return this.transitioning;
  }
}

function bare() {
  const cfg = configSchema.parse({}).ha; // the options the base reads have defaults in every mode
  const node = new HaNode(
    "n1",
    100,
    "ws://n1.test/ws",
    "role",
    {
      activate: () => Promise.resolve(1),
      drain: () => Promise.resolve(),
      deactivate: () => Promise.resolve(),
      abandon: () => [],
      dropProducer: () => {},
      isActive: () => true,
    },
    new BridgeMetrics(),
    createLogger("silent", "n1"),
  );
  return { node, c: new BareCoordinator(node, { up: true }, cfg, createLogger("silent", "n1"), 10) };
}

Deno.test("coordinator: overlapping transitions are all tracked; shutdown waits for every one", async () => {
  const { c } = bare();
  const first = Promise.withResolvers<void>(); // a promotion's follow-up, still writing
  const second = Promise.withResolvers<void>(); // a step-down the watch began meanwhile
  let firstDone = false;
  c.start(Promise.resolve(), () => first.promise.then(() => void (firstDone = true)));
  c.start(second.promise);
  second.resolve();
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(c.busy, true, "the first is still running: no new decision yet");
  const stop = new AbortController();
  const running = c.run(stop.signal);
  stop.abort();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(c.shutdownAt, undefined, "shutdown waits for the first");
  first.resolve();
  await running;
  assert.ok(firstDone && c.shutdownAt !== undefined);
  assert.equal(c.busy, false);
});

Deno.test("coordinator: a live still reads live at shutdown after waiting longer than a stall for a transition", async () => {
  const { node, c } = bare();
  c.stallMs = 100; // role() reads a live as draining once its watch is this late
  assert.ok(await node.promote("test"));
  const stop = new AbortController();
  const running = c.run(stop.signal);
  const slow = Promise.withResolvers<void>(); // e.g. a renewal's follow-up on a slow directory
  c.start(slow.promise);
  stop.abort();
  await new Promise((r) => setTimeout(r, 300)); // 3 stall limits: the watch must keep running
  slow.resolve();
  await running;
  assert.equal(c.liveAtShutdown, true, "not mistaken for a stalled live");
});
