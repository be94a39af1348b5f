/** What a connection needs from the bridge: who this node is, Kafka, the hub, policy, metrics. */
import type { Config } from "../config/schema.ts";
import type { ConsumerBudget } from "../limits/consumer_budget.ts";
import type { DedupeLedger } from "../dedupe/ledger.ts";
import type { BroadcastHub } from "../hub/hub.ts";
import type { KafkaCatalog, KafkaSink, KafkaSource } from "../kafka/types.ts";
import type { BridgeMetrics } from "../observability/metrics.ts";
import type { Logger } from "../observability/logger.ts";
import type { TopicPolicy } from "./topics.ts";
import type { Authenticator } from "../auth/authenticator.ts";

/** Who this node is right now; HA supplies role and epoch. */
export interface NodeIdentity {
  readonly node: string;
  role(): string;
  epoch(): number;
}

export interface SessionDeps {
  config: Config;
  identity: NodeIdentity;
  sink: KafkaSink;
  source: KafkaSource;
  catalog: KafkaCatalog;
  topics: TopicPolicy;
  /** Who a connection is, from its token (or none, where anonymous access is allowed). */
  auth: Authenticator;
  metrics: BridgeMetrics;
  log: Logger;
  /** False while the health probe finds Kafka unreachable: publishes then fail fast instead of timing out. */
  kafkaUp(): boolean;
  /** Serves broadcast subscriptions from one reader per topic; without it each has a consumer of its own. */
  hub?: BroadcastHub;
  /** Exactly-once publishing (publishes with `seq`); absent when dedupe.enabled is false. */
  dedupe?: DedupeLedger;
  /** Kafka consumers run for clients across the bridge (limits.maxConsumers); absent: not counted. */
  consumers?: ConsumerBudget;
}
