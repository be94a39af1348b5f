/**
 * HA: group offsets waiting for the pair's next transaction. Commits for one group, topic and
 * partition that wait together go as the highest one (committing it confirms the lower ones
 * too), and each commit is answered by the transaction that carried its offset.
 */
import type { GroupOffset, KafkaFailure } from "../kafka/types.ts";

/** A group offset taken into a transaction, with every commit it answers. */
export interface TakenOffset {
  offset: GroupOffset;
  waiters: { resolve: () => void; reject: (e: KafkaFailure) => void }[];
}

export class WaitingOffsets {
  readonly #byPartition = new Map<string, TakenOffset>();
  /**
   * A records request went while offsets waited: the offsets go next, so that a steady stream of
   * records cannot starve the commits.
   */
  due = false;

  get size(): number {
    return this.#byPartition.size;
  }

  /** Settles once a transaction carrying this offset (or a higher one) committed or failed. */
  add(offset: GroupOffset): Promise<void> {
    return new Promise((resolve, reject) => {
      const key = `${offset.groupId}\u0000${offset.topic}\u0000${offset.partition}`;
      const waiting = this.#byPartition.get(key);
      if (!waiting) this.#byPartition.set(key, { offset, waiters: [{ resolve, reject }] });
      else {
        if (BigInt(offset.next) > BigInt(waiting.offset.next)) waiting.offset = offset;
        waiting.waiters.push({ resolve, reject });
      }
    });
  }

  /** Everything waiting, taken out for one transaction; later commits wait for the next. */
  take(): TakenOffset[] {
    const taken = [...this.#byPartition.values()];
    this.#byPartition.clear();
    this.due = false;
    return taken;
  }
}

/** Answers every commit of `taken`: committed, or refused with `failure`. */
export function answerOffsets(taken: readonly TakenOffset[], failure?: KafkaFailure): void {
  for (const o of taken) {
    for (const w of o.waiters) failure ? w.reject(failure) : w.resolve();
  }
}
