/**
 * Group commits for `consume`, at most one in flight per partition. Committing an offset
 * confirms every lower one, so while a commit is in flight only the partition's latest
 * printed message waits, and is committed when the first returns. The bridge turns each
 * commit into a Kafka round trip; one per message would fall ever further behind a fast topic.
 */
export interface Committable {
  partition: number;
  offset: string;
}

export class LatestCommits<M extends Committable> {
  readonly #inflight = new Set<number>();
  readonly #waiting = new Map<number, M>();
  #idle: Array<() => void> = [];

  constructor(
    readonly commit: (m: M) => Promise<void>,
    readonly onError: (m: M, e: Error) => void,
  ) {}

  /** Everything committed or failed: nothing in flight, nothing waiting. */
  get idle(): boolean {
    return this.#inflight.size === 0 && this.#waiting.size === 0;
  }

  /** `m` was processed: commit it now, or once the partition's commit in flight returns. */
  add(m: M): void {
    if (this.#inflight.has(m.partition)) this.#waiting.set(m.partition, m);
    else this.#send(m);
  }

  /** Resolves once idle, or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#idle = this.#idle.filter((w) => w !== done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.#idle.push(done);
    });
  }

  #send(m: M): void {
    this.#inflight.add(m.partition);
    this.commit(m).catch((e: Error) => this.onError(m, e)).finally(() => {
      this.#inflight.delete(m.partition);
      const next = this.#waiting.get(m.partition);
      if (next) {
        this.#waiting.delete(m.partition);
        this.#send(next);
      } else if (this.idle) {
        for (const w of [...this.#idle]) w();
      }
    });
  }
}
