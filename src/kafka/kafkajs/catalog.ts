/** Topic metadata (cached) and cluster reachability, through the kafkajs admin client. */
import type { Admin, Kafka } from "kafkajs";
import { type KafkaCatalog, KafkaFailure, type TopicInfo } from "../types.ts";
import { classify } from "./errors.ts";

const TTL_MS = 30_000;

export class KafkajsCatalog implements KafkaCatalog {
  readonly #admin: Admin;
  #connected?: Promise<void>;
  readonly #cache = new Map<string, { info: TopicInfo | null; at: number }>();

  /** Health probes must answer quickly and honestly: no retries, or a dead link looks alive for seconds. */
  readonly #probe: Admin;
  #probeConnected = false;

  constructor(kafka: Kafka) {
    this.#admin = kafka.admin();
    this.#probe = kafka.admin({ retry: { retries: 0 } });
  }

  async #ready(): Promise<Admin> {
    this.#connected ??= this.#admin.connect().catch((e) => {
      this.#connected = undefined;
      throw e;
    });
    await this.#connected;
    return this.#admin;
  }

  async topic(name: string): Promise<TopicInfo | null> {
    const hit = this.#cache.get(name);
    // Unknown topics are re-checked sooner, so that a topic created later is found.
    if (hit && performance.now() - hit.at < (hit.info ? TTL_MS : 2_000)) return hit.info;
    let info: TopicInfo | null;
    try {
      const admin = await this.#ready();
      const meta = await admin.fetchTopicMetadata({ topics: [name] });
      const t = meta.topics.find((x) => x.name === name);
      info = t && t.partitions.length > 0 ? { name, partitions: t.partitions.length } : null;
    } catch (e) {
      const f = classify(e);
      if (f.kind !== "unknown_topic") throw f;
      info = null;
    }
    this.#cache.set(name, { info, at: performance.now() });
    return info;
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

  async endOffsets(topic: string): Promise<Record<string, string>> {
    try {
      const admin = await this.#ready();
      const rows = await admin.fetchTopicOffsets(topic);
      return Object.fromEntries(rows.map((r) => [String(r.partition), r.high]));
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
