/**
 * The subscribe path out of Kafka: one kafkajs consumer per subscription. Group
 * subscriptions share a Kafka consumer group; broadcast ones get a group of their
 * own and never commit. Delivery waits for subscriber credit inside eachBatch, so
 * at most one fetch per subscription is held in memory; the group is kept alive
 * with heartbeats while it waits.
 *
 * A broadcast subscriber's place is its own: the source remembers the offset after
 * the last record it handed over, per partition, and seeks there on every group
 * join. kafkajs starts a fresh offset manager on each join (a broker restart, a
 * crash it restarts from), which without that seek would begin again at `from`:
 * replaying from earliest, or skipping to latest.
 */
import type { Consumer, Kafka } from "kafkajs";
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../observability/logger.ts";
import type { DeliverFn, KafkaSource, SourceEvents, SourceHandle, SourceOptions } from "../types.ts";
import { classify } from "./errors.ts";

const WAIT_SLICE_MS = 1_000;

function headersOf(h: Record<string, unknown> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? v.map(String).join(",") : String(v);
  }
  return out;
}

export class KafkajsSource implements KafkaSource {
  constructor(
    /** A kafkajs client per consumer (see kafkaClients: a group's offsets are kept per client). */
    readonly newClient: () => Kafka,
    readonly config: Config["kafka"]["consumer"],
    readonly log: Logger,
  ) {}

  async open(opts: SourceOptions, deliver: DeliverFn, events: SourceEvents = {}): Promise<SourceHandle> {
    const consumer = this.newClient().consumer({
      groupId: opts.groupId,
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      maxBytesPerPartition: this.config.maxBytesPerPartition,
      maxBytes: this.config.maxBytesPerPartition * 4,
      // A stopping consumer waits for its fetch in flight: keep that short, so drains and handovers are quick.
      maxWaitTimeInMs: 1000,
      // How soon partitions added to the topic are noticed (kafkajs then rejoins and reads them).
      metadataMaxAge: this.config.metadataMaxAgeMs,
      allowAutoTopicCreation: false,
      retry: {
        retries: 10,
        initialRetryTime: 100,
        maxRetryTime: 2000,
        // kafkajs restarts a crashed consumer by itself: never one whose subscription has ended.
        restartOnFailure: () => Promise.resolve(!stopped),
      },
    });
    let stopped = false;
    const handle: SourceHandle = {
      commit: async (partition, offset) => {
        try {
          await consumer.commitOffsets([{
            topic: opts.topic,
            partition,
            offset: (BigInt(offset) + 1n).toString(),
          }]);
        } catch (e) {
          throw classify(e);
        }
      },
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await consumer.disconnect().catch(() => {});
      },
    };
    consumer.on(consumer.events.CRASH, (ev) => {
      const restart = (ev.payload as { restart?: boolean }).restart;
      if (!restart && !stopped) events.onFatal?.(ev.payload.error);
    });
    // The offset after the last record handed over, per partition (where `from` pinned none yet: its offsets).
    const position = new Map<number, string>(
      Object.entries(opts.startOffsets ?? {}).map(([p, o]) => [Number(p), o]),
    );
    if (opts.mode === "group") {
      consumer.on(consumer.events.GROUP_JOIN, (ev) => {
        events.onAssignment?.((ev.payload.memberAssignment as Record<string, number[]>)[opts.topic] ?? []);
      });
    }
    if (opts.mode === "broadcast") {
      this.#seekOnEveryJoin(consumer, opts.topic, position, opts.newPartitionsFromStart ?? false);
    } else if (opts.startOffsets) this.#seekOnFirstJoin(consumer, opts.topic, opts.startOffsets);
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [opts.topic], fromBeginning: opts.from.kind === "earliest" });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const hw = BigInt(batch.highWatermark);
          const last = batch.messages[batch.messages.length - 1];
          for (const m of batch.messages) {
            if (!isRunning() || isStale()) return;
            // Cancelled when this batch goes stale while the message waits for credit: a revoked
            // partition's message must not be sent later, on a grant of credit.
            const waiting = new AbortController();
            const sent = deliver({
              topic: batch.topic,
              partition: batch.partition,
              offset: m.offset,
              timestamp: m.timestamp,
              key: m.key ? new Uint8Array(m.key) : null,
              value: m.value ? new Uint8Array(m.value) : null,
              headers: headersOf(m.headers),
              batchNext: m === last ? (BigInt(batch.lastOffset()) + 1n).toString() : undefined,
            }, waiting.signal);
            // Waiting for credit: keep the group membership alive, and stop waiting if the consumer stops.
            let outcome: boolean | "waiting" = await raceTimeout(sent, WAIT_SLICE_MS);
            try {
              while (outcome === "waiting") {
                if (!isRunning() || isStale()) return;
                await heartbeat(); // throws on a rebalance: the batch is given up
                outcome = await raceTimeout(sent, WAIT_SLICE_MS);
              }
            } finally {
              if (outcome === "waiting") waiting.abort(); // a revoked message is never sent later
            }
            if (!outcome) {
              // The subscription ended (not a message superseded by a newer run): stop fetching,
              // rather than fetch the same batch again and again.
              if (isRunning() && !isStale()) void handle.stop();
              return;
            }
            position.set(batch.partition, (BigInt(m.offset) + 1n).toString());
            resolveOffset(m.offset);
            events.onLag?.(batch.partition, Number(hw - BigInt(m.offset) - 1n));
          }
        },
      });
    } catch (e) {
      await handle.stop();
      throw classify(e);
    }
    return handle;
  }

  /** Group mode: explicit start offsets apply once, when the group first assigns partitions; then commits rule. */
  #seekOnFirstJoin(consumer: Consumer, topic: string, offsets: Record<string, string>): void {
    let done = false;
    consumer.on(consumer.events.GROUP_JOIN, (ev) => {
      if (done) return;
      done = true;
      const assigned = (ev.payload.memberAssignment as Record<string, number[]>)[topic] ?? [];
      for (const partition of assigned) {
        const offset = offsets[String(partition)];
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
    });
  }

  /** Broadcast: every join continues where this subscriber is, whatever the broker forgot. */
  #seekOnEveryJoin(
    consumer: Consumer,
    topic: string,
    position: Map<number, string>,
    newFromStart: boolean,
  ): void {
    consumer.on(consumer.events.GROUP_JOIN, (ev) => {
      const assigned = (ev.payload.memberAssignment as Record<string, number[]>)[topic] ?? [];
      for (const partition of assigned) {
        let offset = position.get(partition);
        if (offset === undefined && newFromStart) position.set(partition, offset = "0");
        if (offset !== undefined) consumer.seek({ topic, partition, offset });
      }
    });
  }
}

async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | "waiting"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<"waiting">((r) => (timer = setTimeout(() => r("waiting"), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
