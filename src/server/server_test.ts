import assert from "node:assert/strict";
import { Authenticator } from "../auth/authenticator.ts";
import { configSchema } from "../config/schema.ts";
import { ConsumerBudget } from "../limits/consumer_budget.ts";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { CloseCode } from "../protocol/mod.ts";
import type { SessionDeps } from "../session/session.ts";
import { TopicPolicy } from "../session/topics.ts";
import { settlesWithin } from "../util/deadline.ts";
import { BridgeServer } from "./server.ts";
import { until } from "../../tests/helpers/wait.ts";

/**
 * A server over fake Kafka whose group consumers stop when `stop` settles, with one client
 * connected and subscribed to a group.
 */
async function subscribedServer(stop: () => Promise<void>) {
  const config = configSchema.parse({
    server: { host: "127.0.0.1", port: 0 },
    auth: { anonymous: "enabled" },
  });
  const budget = new ConsumerBudget(1);
  const server = new BridgeServer(
    {
      config,
      identity: { node: "n1", role: () => "live", epoch: () => 3 },
      metrics: new BridgeMetrics(),
      log: createLogger("silent", "n1"),
      kafkaUp: () => true,
      consumers: budget,
      topics: new TopicPolicy(config.topics),
      auth: new Authenticator(config.auth, "127.0.0.1", undefined),
      catalog: { topic: () => Promise.resolve({ partitions: 1 }) },
      source: { open: () => Promise.resolve({ commit: () => Promise.resolve(), stop }) },
    } as unknown as SessionDeps,
    { ready: () => ({ ready: true, detail: {} }), metrics: () => Promise.resolve("") },
  );
  const { port } = await server.listen();
  const ws = new WebSocket(`ws://127.0.0.1:${port}${config.server.path}`);
  const frames: { op?: string; id?: string }[] = [];
  ws.onmessage = (e) => frames.push(JSON.parse(e.data));
  const closed = new Promise<void>((r) => (ws.onclose = () => r()));
  await until("welcome", () => frames.some((f) => f.op === "welcome"));
  ws.send(
    JSON.stringify({ op: "subscribe", id: "s1", sub: "g", topic: "orders", mode: "group", group: "g" }),
  );
  await until("subscribed", () => frames.some((f) => f.id === "s1" && f.op === "subscribed"));
  /** The HA step-down: sessions end without waiting for their consumers to leave. */
  const stepDown = () =>
    server.closeSessions(
      performance.now() + 2_000,
      CloseCode.NOT_LIVE,
      "stepping down",
      undefined,
      "background",
    );
  return { server, budget, closed, stepDown };
}

Deno.test("server: shutdown waits for the group consumers an HA step-down left leaving", async () => {
  // A consumer stuck in a JoinGroup: it leaves when the test says.
  const left = Promise.withResolvers<void>();
  let stopCalled = false;
  const { server, budget, closed, stepDown } = await subscribedServer(() => (
    (stopCalled = true), left.promise
  ));
  await stepDown();
  assert.ok(stopCalled, "the consumer was told to stop");
  await closed;
  assert.equal(budget.inUse, 1, "still leaving its group");

  let shutDown = false;
  const shutdown = server.shutdown(performance.now() + 60_000).then(() => (shutDown = true));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(shutDown, false, "shutdown waits for the consumer still leaving");
  left.resolve();
  assert.ok(await settlesWithin(shutdown, 20_000), "and ends once it left, not at its deadline");
  assert.equal(budget.inUse, 0);
});

Deno.test("server: shutdown stops waiting for a consumer that never leaves at its deadline", async () => {
  const { server, closed, stepDown } = await subscribedServer(() => new Promise<void>(() => {}));
  await stepDown();
  await closed;
  const started = performance.now();
  const ended = await settlesWithin(server.shutdown(started + 300), 10_000);
  const tookMs = performance.now() - started;
  assert.ok(ended, "shutdown ended (the process exits next, and the kernel closes what is left)");
  assert.ok(tookMs >= 250, `it waited for the consumer until its deadline (${Math.round(tookMs)} ms)`);
});
