/**
 * The numbered messages `produce` sends ("hello N", optionally padded to a size) and the
 * tally `consume` keeps of them, so a run can show duplicates and gaps end to end.
 */

const PREFIX = "hello ";
const NUMBER = /^hello (\d+)(?: |$)/;
/** The longest label a run without --count can reach ("hello " + the largest safe integer). */
export const LONGEST_LABEL = `${PREFIX}${Number.MAX_SAFE_INTEGER}`.length;

/** "hello N": what produce prints for message N, whatever its padded size. */
export function label(n: number): string {
  return `${PREFIX}${n}`;
}

/**
 * Message N's value: its label, then (when `size` is larger) a space and dots up to `size`
 * bytes, so every value has the same size and still starts with its number. ASCII only, so
 * characters and bytes agree.
 */
export function numberedValue(n: number, size?: number): string {
  const text = label(n);
  if (size === undefined || size <= text.length) return text;
  return `${text} ${".".repeat(size - text.length - 1)}`;
}

/** The number of a value produce sent, or undefined for any other value. */
export function messageNumber(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = NUMBER.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * What consume counts. received: every message handed over. duplicates: messages whose
 * (partition, offset) or message number was already seen (each counted once). gaps: numbers
 * between the lowest and highest seen that never arrived.
 */
export class ConsumeTally {
  received = 0;
  duplicates = 0;
  readonly #positions = new Set<string>();
  readonly #numbers = new Set<number>();
  #lowest = Infinity;
  #highest = -Infinity;

  /** Counts one message; returns true when it repeats one seen before. */
  add(partition: number, offset: string, value: unknown): boolean {
    this.received++;
    const position = `${partition}@${offset}`;
    let repeat = this.#positions.has(position);
    this.#positions.add(position);
    const n = messageNumber(value);
    if (n !== undefined) {
      if (this.#numbers.has(n)) repeat = true;
      this.#numbers.add(n);
      this.#lowest = Math.min(this.#lowest, n);
      this.#highest = Math.max(this.#highest, n);
    }
    if (repeat) this.duplicates++;
    return repeat;
  }

  get gaps(): number {
    return this.#numbers.size === 0 ? 0 : this.#highest - this.#lowest + 1 - this.#numbers.size;
  }

  summary(): string {
    return `received ${this.received}, duplicates ${this.duplicates}, gaps ${this.gaps}`;
  }
}
