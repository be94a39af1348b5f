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
  /**
   * While it returns a promise, the next record waits for it (and Kafka is not read further):
   * a live whose table is current learns nothing from its own writes (see skipTo).
   */
  hold?(): Promise<void> | undefined;
  log: Logger;
  reopenDelayMs?: number;
}

export class LogFollower {
  #reader?: SourceHandle;
  /** The offset after the last record applied (Kafka may hold one partition only: 0). */
  readonly #next = new Map<number, string>();
  #stopped = false;
  #reopenTimer?: ReturnType<typeof setTimeout>;
  /** Each reader's deliveries carry its generation: a replaced reader's are dropped. */
  #generation = 0;

  constructor(readonly deps: FollowerDeps) {}

  async start(): Promise<void> {
    const generation = ++this.#generation;
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
      async (d, cancel) => {
        for (let held = this.deps.hold?.(); held; held = this.deps.hold?.()) {
          await held;
          if (cancel?.aborted || generation !== this.#generation) return true; // a newer reader reads it
        }
        if (this.#stopped || generation !== this.#generation) return false;
        this.deps.apply(d.key, d.value, Number(d.timestamp));
        this.#next.set(d.partition, (BigInt(d.offset) + 1n).toString());
        return true;
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

  /**
   * Moves the reader forward to `offset` of `partition`, unless it is there already: what lies
   * before it is known to the caller (its own committed writes), so it is not read again.
   */
  async skipTo(partition: number, offset: string): Promise<void> {
    if (this.#stopped || BigInt(this.#next.get(partition) ?? "0") >= BigInt(offset)) return;
    this.#next.set(partition, offset);
    const old = this.#reader;
    this.#reader = undefined;
    this.#generation++;
    await old?.stop().catch(() => {});
    if (!this.#stopped) await this.start().catch((e) => this.#failed(e as Error));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reopenTimer);
    await this.#reader?.stop();
  }
}
