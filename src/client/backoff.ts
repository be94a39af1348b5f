/**
 * Reconnect delays: exponential growth with full jitter (a random delay from 0 up to the
 * ceiling), so many clients dropped at once do not come back in lockstep.
 */

export interface BackoffOptions {
  /** Ceiling of the first delay, in ms (default 100). */
  initialMs?: number;
  /** No delay is longer than this, in ms (default 5000). */
  maxMs?: number;
  /**
   * While a node of the list answers (a backup refusing, a live naming another), a failover is
   * under way and the new live is moments away: delays stay under this, in ms (default 250).
   */
  answeredMaxMs?: number;
}

/** The largest delay of an attempt: min(maxMs, initialMs * 2^attempt). */
export function backoffCeiling(attempt: number, initialMs: number, maxMs: number): number {
  // 2^60 ms is beyond any sane maxMs; capping the exponent keeps the product finite.
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 60));
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly answeredMaxMs: number;
  #attempt = 0;

  /** `random` returns [0, 1) like Math.random; tests inject their own. */
  constructor(opts: BackoffOptions = {}, readonly random: () => number = Math.random) {
    this.initialMs = opts.initialMs ?? 100;
    this.maxMs = opts.maxMs ?? 5000;
    if (!Number.isFinite(this.initialMs) || this.initialMs < 0) {
      throw new RangeError(`backoff.initialMs must be a non-negative number, got ${opts.initialMs}`);
    }
    if (!Number.isFinite(this.maxMs) || this.maxMs < this.initialMs) {
      throw new RangeError(
        `backoff.maxMs must be a number at least initialMs (${this.initialMs}), got ${opts.maxMs}`,
      );
    }
    this.answeredMaxMs = opts.answeredMaxMs ?? Math.min(250, this.maxMs);
    if (!Number.isFinite(this.answeredMaxMs) || this.answeredMaxMs < 0 || this.answeredMaxMs > this.maxMs) {
      throw new RangeError(
        `backoff.answeredMaxMs must be a number from 0 to maxMs (${this.maxMs}), got ${opts.answeredMaxMs}`,
      );
    }
  }

  /** How many delays were handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /**
   * The delay before the next attempt, in whole ms from 0 to the ceiling (inclusive).
   * `answered`: a node answered in the last round, so the ceiling is answeredMaxMs.
   */
  next(answered = false): number {
    const ceiling = backoffCeiling(
      this.#attempt++,
      this.initialMs,
      answered ? this.answeredMaxMs : this.maxMs,
    );
    return this.jitter(ceiling);
  }

  /** A delay from 0 to `ceiling` without growing the exponent (between the URLs of one round). */
  jitter(ceiling: number): number {
    return Math.min(ceiling, Math.floor(this.random() * (ceiling + 1)));
  }

  /** After a connection that served: the next failure starts from the smallest delays again. */
  reset(): void {
    this.#attempt = 0;
  }
}
