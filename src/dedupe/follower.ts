/**
 * Reads the dedupe log from its start and keeps following it, on every node of the pair:
 * a backup is then nearly current when it takes over, and reads only the tail up to its
 * barrier. One Kafka reader (a group of one member, never committing: its position is
 * kept here, so a rejoin or a reopened reader continues exactly where it was).
 */
import type { KafkaSource, SourceHandle } from "../kafka/types.ts";
import type { Logger } from "../observability/logger.ts";

export interface FollowerDeps {
  source: KafkaSource;
  topic: string;
  groupId(): string;
  /** `timestamp`: when the record was written (ms since the epoch). */
  apply(key: Uint8Array | null, value: Uint8Array | null, timestamp: number): void;
  log: Logger;
  reopenDelayMs?: number;
}

export class LogFollower {
  #reader?: SourceHandle;
  /** The offset after the last record applied (Kafka may hold one partition only: 0). */
  readonly #next = new Map<number, string>();
  #stopped = false;
  #reopenTimer?: ReturnType<typeof setTimeout>;

  constructor(readonly deps: FollowerDeps) {}

  async start(): Promise<void> {
    const startOffsets: Record<string, string> = {};
    for (const [p, o] of this.#next) startOffsets[String(p)] = o;
    this.#reader = await this.deps.source.open(
      {
        topic: this.deps.topic,
        mode: "broadcast",
        groupId: this.deps.groupId(),
        from: { kind: "earliest" },
        startOffsets,
        newPartitionsFromStart: true,
      },
      (d) => {
        if (this.#stopped) return Promise.resolve(false);
        this.deps.apply(d.key, d.value, Number(d.timestamp));
        this.#next.set(d.partition, (BigInt(d.offset) + 1n).toString());
        return Promise.resolve(true);
      },
      { onFatal: (e) => this.#failed(e) },
    );
  }

  #failed(e: Error): void {
    if (this.#stopped) return;
    this.deps.log.error({ topic: this.deps.topic, err: e.message }, "dedupe log reader failed; reopening it");
    const old = this.#reader;
    this.#reader = undefined;
    this.#reopenTimer = setTimeout(async () => {
      this.#reopenTimer = undefined;
      await old?.stop().catch(() => {});
      if (this.#stopped) return;
      await this.start().catch((err) => this.#failed(err as Error));
    }, this.deps.reopenDelayMs ?? 1000);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reopenTimer);
    await this.#reader?.stop();
  }
}
