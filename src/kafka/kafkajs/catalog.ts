/** Topic metadata and limits (cached), and cluster reachability, through the kafkajs admin client. */
import { type Admin, ConfigResourceTypes, type Kafka } from "kafkajs";
import { TopicCache } from "../topic_cache.ts";
import { type KafkaCatalog, KafkaFailure, type TopicInfo } from "../types.ts";
import { classify } from "./errors.ts";

export interface CatalogOptions {
  /** Topics remembered at most (least recently used go first). */
  maxTopics: number;
  /** How long a found topic's partitions and limits are trusted. */
  topicTtlMs: number;
  /** How long "no such topic" is trusted: short, so that a topic created later is found. */
  unknownTopicTtlMs: number;
  /** max.message.bytes to assume when Kafka will not describe a topic's config (e.g. no DescribeConfigs ACL). */
  defaultMaxMessageBytes: number;
}

export class KafkajsCatalog implements KafkaCatalog {
  readonly #admin: Admin;
  #connected?: Promise<void>;
  readonly #cache: TopicCache<TopicInfo>;

  /** Health probes must answer quickly and honestly: no retries, or a dead link looks alive for seconds. */
  readonly #probe: Admin;
  #probeConnected = false;

  constructor(kafka: Kafka, readonly opts: CatalogOptions) {
    this.#admin = kafka.admin();
    this.#probe = kafka.admin({ retry: { retries: 0 } });
    this.#cache = new TopicCache((name) => this.#lookUp(name), {
      maxEntries: opts.maxTopics,
      ttlMs: opts.topicTtlMs,
      negativeTtlMs: opts.unknownTopicTtlMs,
      // Limits that could not be read are guessed: ask again soon rather than trust the guess.
      ttlFor: (info) => this.#guessed.has(info) ? opts.unknownTopicTtlMs : undefined,
    });
  }

  /** Topic infos whose limits are the configured default, because Kafka would not describe them. */
  readonly #guessed = new WeakSet<TopicInfo>();

  async #ready(): Promise<Admin> {
    this.#connected ??= this.#admin.connect().catch((e) => {
      this.#connected = undefined;
      throw e;
    });
    await this.#connected;
    return this.#admin;
  }

  topic(name: string): Promise<TopicInfo | null> {
    return this.#cache.get(name);
  }

  cachedTopic(name: string): TopicInfo | null | undefined {
    return this.#cache.peek(name);
  }

  forgetTopic(name: string): void {
    this.#cache.invalidate(name);
  }

  async #lookUp(name: string): Promise<TopicInfo | null> {
    let partitions: number;
    try {
      const admin = await this.#ready();
      const meta = await admin.fetchTopicMetadata({ topics: [name] });
      partitions = meta.topics.find((x) => x.name === name)?.partitions.length ?? 0;
    } catch (e) {
      const f = classify(e);
      if (f.kind !== "unknown_topic") throw f;
      return null;
    }
    if (partitions === 0) return null;
    const configs = await this.#topicConfigs(name);
    const maxMessageBytes = Number(configs?.get("max.message.bytes"));
    const info: TopicInfo = {
      name,
      partitions,
      maxMessageBytes: Number.isSafeInteger(maxMessageBytes) && maxMessageBytes > 0
        ? maxMessageBytes
        : this.opts.defaultMaxMessageBytes,
      compacted: configs?.get("cleanup.policy")?.split(",").includes("compact") ?? false,
    };
    if (!configs) this.#guessed.add(info);
    return info;
  }

  /** The topic's limits (its own, or the broker defaults it inherits); undefined when Kafka will not say. */
  async #topicConfigs(
    name: string,
    configNames = ["max.message.bytes", "cleanup.policy"],
  ): Promise<Map<string, string> | undefined> {
    try {
      const admin = await this.#ready();
      const res = await admin.describeConfigs({
        resources: [{
          type: ConfigResourceTypes.TOPIC,
          name,
          configNames,
        }],
        includeSynonyms: false,
      });
      return new Map(res.resources[0]?.configEntries.map((c) => [c.configName, c.configValue]));
    } catch {
      return undefined; // not allowed to describe, or an old broker: the configured default stands in
    }
  }

  async offsetsForTimestamp(topic: string, timestamp: number): Promise<Record<string, string>> {
    try {
      const admin = await this.#ready();
      const rows = await admin.fetchTopicOffsetsByTimestamp(topic, timestamp);
      return Object.fromEntries(rows.map((r) => [String(r.partition), r.offset]));
    } catch (e) {
      throw classify(e);
    }
  }

  async groupCommitted(groupId: string, topic: string, partition: number): Promise<string | undefined> {
    try {
      const admin = await this.#ready();
      const rows = await admin.fetchOffsets({ groupId, topics: [topic] });
      const offset = rows[0]?.partitions.find((p) => p.partition === partition)?.offset;
      return offset === undefined || offset === "-1" ? undefined : offset;
    } catch (e) {
      throw classify(e);
    }
  }

  endOffsets(topic: string): Promise<Record<string, string>> {
    return this.#offsets(topic, "high");
  }

  earliestOffsets(topic: string): Promise<Record<string, string>> {
    return this.#offsets(topic, "low");
  }

  async #offsets(topic: string, which: "high" | "low"): Promise<Record<string, string>> {
    try {
      const admin = await this.#ready();
      const rows = await admin.fetchTopicOffsets(topic);
      return Object.fromEntries(rows.map((r) => [String(r.partition), r[which]]));
    } catch (e) {
      throw classify(e);
    }
  }

  async ensureTopic(
    name: string,
    partitions: number,
    configs: Record<string, string>,
  ): Promise<Record<string, string>> {
    try {
      const admin = await this.#ready();
      // Asked first: kafkajs logs an error for creating a topic that exists.
      if ((await admin.listTopics()).includes(name)) {
        // Found, not made here: the caller checks what matters (this never alters a topic).
        const found = await this.#topicConfigs(name, Object.keys(configs));
        return Object.fromEntries(found ?? []);
      }
      // false when another node created it a moment ago: nothing to do either.
      await admin.createTopics({
        waitForLeaders: true,
        topics: [{
          topic: name,
          numPartitions: partitions,
          configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
        }],
      });
      return configs;
    } catch (e) {
      throw classify(e);
    }
  }

  async ping(): Promise<void> {
    try {
      if (!this.#probeConnected) {
        await this.#probe.connect();
        this.#probeConnected = true;
      }
      await this.#probe.describeCluster();
    } catch (e) {
      this.#probeConnected = false;
      await this.#probe.disconnect().catch(() => {});
      throw new KafkaFailure("unavailable", (e as Error).message);
    }
  }

  async close(): Promise<void> {
    await this.#probe.disconnect().catch(() => {});
    await this.#admin.disconnect().catch(() => {});
  }
}
