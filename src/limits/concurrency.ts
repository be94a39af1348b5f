/**
 * Runs expensive work a few at a time, with a bounded queue behind: when the queue is full the
 * work is refused at once (Busy) rather than queued without end. Used around scrypt, which
 * unauthenticated clients can trigger and which takes 16 MiB and tens of ms each time.
 */

/** The queue is full: the caller should answer "try again shortly". */
export class Busy extends Error {
  constructor(running: number, queued: number) {
    super(`${running} running and ${queued} waiting already`);
    this.name = "Busy";
  }
}

export class BoundedConcurrency {
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /** `concurrency` at once (at least 1), at most `maxQueued` waiting for their turn. */
  constructor(readonly concurrency: number, readonly maxQueued: number) {
    if (!(concurrency >= 1)) throw new RangeError("concurrency must be at least 1");
  }

  get running(): number {
    return this.#running;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  /** Runs `work` when a slot is free; rejects with Busy (without running it) when the queue is full. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) {
      if (this.#waiting.length >= this.maxQueued) throw new Busy(this.#running, this.#waiting.length);
      // The slot is handed over by the one finishing (running stays counted), so none can overtake.
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
