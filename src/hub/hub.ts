/**
 * Every broadcast subscription goes through here: one TopicHub per topic, created
 * with its first subscriber and stopped with its last, and one pool of catch-up
 * readers for all of them. Group subscriptions do not: they are Kafka group members.
 */
import type { KafkaCatalog, KafkaSource } from "../kafka/types.ts";
import type { Logger } from "../observability/logger.ts";
import type { HubStats } from "../observability/metrics.ts";
import type { StartPosition } from "../protocol/mod.ts";
import { Cursor, type CursorHooks, type CursorOptions } from "./cursor.ts";
import { ReaderPool } from "./catch_up.ts";
import { TopicHub } from "./topic_hub.ts";

export interface BroadcastHubOptions {
  /** Records and bytes each partition's window holds. */
  windowRecords: number;
  windowBytes: number;
  /** Topics with broadcast subscribers at once. */
  maxTopics: number;
  /** Catch-up readers (Kafka consumers) across all topics; cursors beyond it wait their turn. */
  maxCatchUpReaders: number;
  /** Prefix of the hub readers' Kafka group ids. */
  groupPrefix: string;
  node: string;
}

export interface BroadcastHubDeps {
  source: KafkaSource;
  catalog: Pick<KafkaCatalog, "endOffsets" | "earliestOffsets" | "offsetsForTimestamp">;
  log: Logger;
}

/** Refusals the session turns into protocol errors. */
export class HubRefusal extends Error {}

export type { HubStats } from "../observability/metrics.ts";

export class BroadcastHub {
  readonly #hubs = new Map<string, Promise<TopicHub>>();
  /** Hubs that have started, for metrics (a scrape never waits on a starting hub). */
  readonly #started = new Map<string, TopicHub>();
  #closed = false;
  readonly #pool: ReaderPool;

  constructor(readonly deps: BroadcastHubDeps, readonly opts: BroadcastHubOptions) {
    this.#pool = new ReaderPool(opts.maxCatchUpReaders);
  }

  /**
   * A cursor at `from`, delivering through `hooks`; resolves once it is in place. It sends
   * nothing until `begin()` (after the subscriber was told "subscribed").
   */
  async subscribe(
    topic: string,
    from: StartPosition,
    cursorOptions: CursorOptions,
    hooks: CursorHooks,
  ): Promise<Cursor> {
    // Asked of Kafka before a hub exists, so a failure here leaves no hub behind.
    // "latest" needs no request: the hub's reader is at the tail, so a record acked after
    // "subscribed" is at or past its position.
    const start = from.kind === "earliest"
      ? await this.deps.catalog.earliestOffsets(topic)
      : from.kind === "offsets"
      ? from.offsets
      : from.kind === "timestamp"
      ? await this.deps.catalog.offsetsForTimestamp(topic, from.timestamp)
      : undefined;
    for (;;) {
      if (this.#closed) throw new HubRefusal("the bridge is shutting down");
      const pending = this.#hub(topic, cursorOptions.clientTopic);
      const hub = await pending;
      // The hub's last subscriber may have left meanwhile: then take the topic's current hub.
      if (this.#hubs.get(topic) !== pending) continue;
      const cursor = new Cursor(cursorOptions, hub, hooks);
      for (const w of hub.windows()) {
        const offset = start?.[String(w.partition)];
        cursor.positions.set(w.partition, offset !== undefined ? Number(offset) : w.next);
      }
      hub.add(cursor);
      return cursor;
    }
  }

  async unsubscribe(topic: string, cursor: Cursor): Promise<void> {
    const pending = this.#hubs.get(topic);
    if (!pending) return;
    const hub = await pending;
    hub.remove(cursor);
    if (hub.cursors.size === 0 && this.#hubs.get(topic) === pending) {
      this.#hubs.delete(topic);
      this.#started.delete(topic);
      await hub.stop();
    }
  }

  #hub(topic: string, clientTopic: string): Promise<TopicHub> {
    let pending = this.#hubs.get(topic);
    if (pending) return pending;
    if (this.#hubs.size >= this.opts.maxTopics) {
      throw new HubRefusal(
        `broadcast subscriptions reach at most ${this.opts.maxTopics} topics on this bridge`,
      );
    }
    const hub = new TopicHub(topic, clientTopic, {
      source: this.deps.source,
      catalog: this.deps.catalog,
      pool: this.#pool,
      windowLimits: { maxRecords: this.opts.windowRecords, maxBytes: this.opts.windowBytes },
      groupId: () => `${this.opts.groupPrefix}hub.${this.opts.node}.${topic}.${crypto.randomUUID()}`,
      log: this.deps.log,
    });
    pending = hub.start().then(() => {
      this.#started.set(topic, hub);
      return hub;
    });
    this.#hubs.set(topic, pending);
    pending.catch(() => {
      if (this.#hubs.get(topic) === pending) this.#hubs.delete(topic);
    });
    return pending;
  }

  stats(): Promise<HubStats> {
    const stats: HubStats = {
      topics: this.#started.size,
      subscribers: new Map(),
      windowBytes: 0,
      catchUpReaders: this.#pool.active,
      catchUpWaiting: this.#pool.waiting,
      paused: 0,
    };
    for (const [topic, hub] of this.#started) {
      stats.subscribers.set(topic, hub.cursors.size);
      stats.windowBytes += hub.windowBytes;
      for (const c of hub.cursors) if (c.credit === 0 && c.behind) stats.paused++;
    }
    return Promise.resolve(stats);
  }

  async close(): Promise<void> {
    this.#closed = true;
    const hubs = [...this.#hubs.values()];
    this.#hubs.clear();
    this.#started.clear();
    await Promise.all(hubs.map(async (p) => (await p.catch(() => undefined))?.stop()));
  }
}
