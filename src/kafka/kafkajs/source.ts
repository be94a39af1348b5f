/**
 * The subscribe path out of Kafka: one kafkajs consumer per subscription. Group
 * subscriptions share a Kafka consumer group; broadcast ones get a group of their
 * own and never commit. Delivery waits for subscriber credit inside eachBatch, so
 * at most one fetch per subscription is held in memory; the group is kept alive
 * with heartbeats while it waits.
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
    readonly kafka: Kafka,
    readonly config: Config["kafka"]["consumer"],
    readonly log: Logger,
  ) {}

  async open(opts: SourceOptions, deliver: DeliverFn, events: SourceEvents = {}): Promise<SourceHandle> {
    const consumer = this.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      maxBytesPerPartition: this.config.maxBytesPerPartition,
      maxBytes: this.config.maxBytesPerPartition * 4,
      // A stopping consumer waits for its fetch in flight: keep that short, so drains and handovers are quick.
      maxWaitTimeInMs: 1000,
      allowAutoTopicCreation: false,
      retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 2000 },
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
    if (opts.startOffsets) this.#seekOnJoin(consumer, opts.topic, opts.startOffsets);
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [opts.topic], fromBeginning: opts.from.kind === "earliest" });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          const hw = BigInt(batch.highWatermark);
          for (const m of batch.messages) {
            if (!isRunning() || isStale()) return;
            const sent = deliver({
              topic: batch.topic,
              partition: batch.partition,
              offset: m.offset,
              timestamp: m.timestamp,
              key: m.key ? new Uint8Array(m.key) : null,
              value: m.value ? new Uint8Array(m.value) : null,
              headers: headersOf(m.headers),
            });
            // Waiting for credit: keep the group membership alive, and stop waiting if the consumer stops.
            let outcome: boolean | "waiting" = await raceTimeout(sent, WAIT_SLICE_MS);
            while (outcome === "waiting") {
              if (!isRunning() || isStale()) return;
              await heartbeat();
              outcome = await raceTimeout(sent, WAIT_SLICE_MS);
            }
            if (!outcome) return;
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

  /** Explicit start offsets apply once, when the group first assigns partitions to this member. */
  #seekOnJoin(consumer: Consumer, topic: string, offsets: Record<string, string>): void {
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
