/**
 * Prometheus metrics through prom-client (checked to run under Deno). One
 * registry per bridge instance, so tests can run several in one process.
 */
import client from "prom-client";
import { BoundedSeries } from "./bounded_series.ts";

/** What the broadcast hub reports for its gauges (src/hub/hub.ts fills it in). */
export interface HubStats {
  topics: number;
  subscribers: Map<string, number>;
  windowBytes: number;
  catchUpReaders: number;
  catchUpWaiting: number;
  /** Subscribers with records waiting that get none now: out of credit, or a full socket. */
  paused: number;
}

export class BridgeMetrics {
  readonly registry = new client.Registry();
  readonly connections = new client.Gauge({
    name: "edge_bridge_connections",
    help: "Open WebSocket connections",
    registers: [this.registry],
  });
  readonly connectionsRejected = new client.Counter({
    name: "edge_bridge_connections_rejected_total",
    help: "Connections refused, by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly publishes = new client.Counter({
    name: "edge_bridge_publishes_total",
    help: "Publish requests received",
    registers: [this.registry],
  });
  readonly acks = new client.Counter({
    name: "edge_bridge_acks_total",
    help: "Publishes acked after Kafka confirmed them",
    registers: [this.registry],
  });
  readonly nacks = new client.Counter({
    name: "edge_bridge_nacks_total",
    help: "Publishes refused, by error code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly deliveries = new client.Counter({
    name: "edge_bridge_deliveries_total",
    help: "Messages delivered to subscribers",
    registers: [this.registry],
  });
  readonly frameErrors = new client.Counter({
    name: "edge_bridge_frame_errors_total",
    help: "Client frames refused, by error code",
    labelNames: ["code"],
    registers: [this.registry],
  });
  readonly dedupeResends = new client.Counter({
    name: "edge_bridge_dedupe_resends_total",
    help: "Sequenced publishes that were resends: answered from the dedupe table, or refused while in flight",
    labelNames: ["outcome"],
    registers: [this.registry],
  });
  readonly dedupeUnverifiable = new client.Counter({
    name: "edge_bridge_dedupe_unverifiable_total",
    help: "Sequenced publishes outside the dedupe window (written, at-least-once), by reason",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly dedupeLogUnreadable = new client.Counter({
    name: "edge_bridge_dedupe_log_unreadable_total",
    help: "Records of the dedupe log this bridge could not read (skipped)",
    registers: [this.registry],
  });
  readonly publishLatency = new client.Histogram({
    name: "edge_bridge_publish_ack_seconds",
    help: "Time from publish frame received to ack sent",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly produceRequestSeconds = new client.Histogram({
    name: "edge_bridge_kafka_produce_seconds",
    help: "Duration of each produce request the bridge sent to Kafka (in HA mode, with its transaction)",
    buckets: [0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [this.registry],
  });
  readonly produceRequestRecords = new client.Histogram({
    name: "edge_bridge_kafka_produce_records",
    help: "Records carried by each produce request",
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    registers: [this.registry],
  });
  readonly kafkaErrors = new client.Counter({
    name: "edge_bridge_kafka_errors_total",
    help: "Errors returned by Kafka or the Kafka client, by operation",
    labelNames: ["operation"],
    registers: [this.registry],
  });
  readonly kafkaUp = new client.Gauge({
    name: "edge_bridge_kafka_up",
    help: "1 when the last Kafka health check passed",
    registers: [this.registry],
  });
  readonly consumerLag = new client.Gauge({
    name: "edge_bridge_consumer_lag",
    help: "Messages between the last fetched offset and the high watermark, per subscription partition",
    labelNames: ["topic", "partition", "group"],
    registers: [this.registry],
  });
  readonly lagSeriesDropped = new client.Counter({
    name: "edge_bridge_consumer_lag_series_dropped_total",
    help: "Consumer-lag updates not exported because limits.maxLagSeries series exist already",
    registers: [this.registry],
  });
  /** The consumer-lag gauge through its bound (limits.maxLagSeries); set by boundLag. */
  lagSeries = new BoundedSeries(this.consumerLag, 1_000, () => this.lagSeriesDropped.inc());
  readonly throttled = new client.Counter({
    name: "edge_bridge_throttled_total",
    help: "Times a connection's reads were paused for going over limits.bytesPerSecond",
    registers: [this.registry],
  });
  readonly sendBufferCloses = new client.Counter({
    name: "edge_bridge_send_buffer_closes_total",
    help: "Connections closed (4009) because their send buffer passed limits.maxSendBufferBytes",
    registers: [this.registry],
  });
  readonly haBeatsRejected = new client.Counter({
    name: "edge_bridge_ha_heartbeats_rejected_total",
    help: "Heartbeats ignored, by reason (not_a_peer, unsigned, bad_signature, bad_field, replayed, ...)",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly subscriptions = new client.Gauge({
    name: "edge_bridge_subscriptions",
    help: "Active subscriptions",
    registers: [this.registry],
  });
  readonly pendingDeliveries = new client.Gauge({
    name: "edge_bridge_pending_deliveries",
    help:
      "Messages fetched from Kafka and waiting for subscriber credit (bounded by one fetch per subscription)",
    registers: [this.registry],
  });

  readonly haRole = new client.Gauge({
    name: "edge_bridge_ha_role",
    help: "1 for this node's current HA role (init, backup, activating, live, draining, fenced, stopped)",
    labelNames: ["role"],
    registers: [this.registry],
  });
  readonly haEpoch = new client.Gauge({
    name: "edge_bridge_ha_epoch",
    help: "This node's HA epoch",
    registers: [this.registry],
  });
  readonly haTransitions = new client.Counter({
    name: "edge_bridge_ha_transitions_total",
    help: "HA role transitions",
    labelNames: ["from", "to"],
    registers: [this.registry],
  });
  readonly memory = new client.Gauge({
    name: "edge_bridge_memory_bytes",
    help: "Process memory (Deno.memoryUsage), by kind: rss, heap_used, external",
    labelNames: ["kind"],
    registers: [this.registry],
    collect() {
      const m = Deno.memoryUsage();
      this.set({ kind: "rss" }, m.rss);
      this.set({ kind: "heap_used" }, m.heapUsed);
      this.set({ kind: "external" }, m.external);
    },
  });

  constructor() {
    // prom-client's process metrics that work under Deno (CPU, handles, event loop); memory is read above.
    client.collectDefaultMetrics({ register: this.registry, prefix: "edge_bridge_" });
  }

  /** Sets the bound on consumer-lag series (before any is set). */
  boundLag(maxSeries: number): void {
    this.lagSeries = new BoundedSeries(this.consumerLag, maxSeries, () => this.lagSeriesDropped.inc());
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** Gauges of the broadcast hub, read when /metrics is scraped. */
  watchDedupe(stats: () => { clients: number; positions: number }): void {
    new client.Gauge({
      name: "edge_bridge_dedupe_clients",
      help: "Exactly-once clients whose windows the bridge holds",
      registers: [this.registry],
      collect() {
        this.set(stats().clients);
      },
    });
    new client.Gauge({
      name: "edge_bridge_dedupe_positions",
      help: "Written-but-unacknowledged positions held in the dedupe windows",
      registers: [this.registry],
      collect() {
        this.set(stats().positions);
      },
    });
  }

  watchHub(stats: () => Promise<HubStats>): void {
    const registers = [this.registry];
    const gauge = (
      name: string,
      help: string,
      read: (s: HubStats, g: client.Gauge) => void,
      labelNames: string[] = [],
    ) =>
      new client.Gauge({
        name,
        help,
        labelNames,
        registers,
        async collect() {
          read(await stats(), this);
        },
      });
    gauge(
      "edge_bridge_hub_topics",
      "Topics with a broadcast hub (one Kafka reader each)",
      (s, g) => g.set(s.topics),
    );
    gauge("edge_bridge_hub_subscribers", "Broadcast subscribers per topic", (s, g) => {
      g.reset();
      for (const [topic, n] of s.subscribers) g.set({ topic }, n);
    }, ["topic"]);
    gauge(
      "edge_bridge_hub_window_bytes",
      "Bytes held in the hubs' windows of recent records",
      (s, g) => g.set(s.windowBytes),
    );
    gauge(
      "edge_bridge_hub_catchup_readers",
      "Catch-up readers reading for subscribers behind a window",
      (s, g) => g.set(s.catchUpReaders),
    );
    gauge(
      "edge_bridge_hub_catchup_waiting",
      "Subscribers waiting for a catch-up reader",
      (s, g) => g.set(s.catchUpWaiting),
    );
    gauge(
      "edge_bridge_hub_paused_subscribers",
      "Broadcast subscribers with records waiting that get none now: out of credit, or a full socket",
      (s, g) => g.set(s.paused),
    );
  }
}
