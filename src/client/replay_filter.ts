/**
 * Positions a subscription has already handed to the application, so a replay after a
 * reconnect (group redelivery, or a broadcast resume that overlaps) is not delivered twice,
 * and the broadcast resume point computed from them.
 */

export type From =
  | "earliest"
  | "latest"
  | { offsets: Record<string, string> }
  | { timestamp: number };

export class DeliveredPositions {
  /** partition -> the next offset not yet handed over (last delivered + 1, or past a skipped range). */
  readonly #next = new Map<number, bigint>();

  /** True when the message is new (and records it); false when its position was already handed over. */
  accept(partition: number, offset: string): boolean {
    const at = BigInt(offset);
    const next = this.#next.get(partition);
    if (next !== undefined && at < next) return false;
    this.#next.set(partition, at + 1n);
    return true;
  }

  /** Records from `to` on are what comes next (the ones before were deleted by retention). */
  skip(partition: number, to: string): void {
    const at = BigInt(to);
    const next = this.#next.get(partition);
    if (next === undefined || at > next) this.#next.set(partition, at);
  }

  get next(): ReadonlyMap<number, bigint> {
    return this.#next;
  }
}

/**
 * Where a broadcast subscription resumes: per partition the later of where the bridge
 * started it (`start`, from `subscribed`) and the next offset after what was handed over.
 * Without `start` (an older bridge) only partitions something was read from can be named;
 * the bridge starts the others at the latest offset, so records written to them while the
 * client was away are not seen. With nothing read and no `start`, the original `from` is kept.
 */
export function resumeFrom(
  original: From,
  start: Readonly<Record<string, string>> | undefined,
  next: ReadonlyMap<number, bigint>,
): From {
  const offsets: Record<string, string> = { ...start };
  for (const [partition, offset] of next) {
    const begun = offsets[partition];
    if (begun === undefined || BigInt(begun) < offset) offsets[partition] = offset.toString();
  }
  return Object.keys(offsets).length === 0 ? original : { offsets };
}
