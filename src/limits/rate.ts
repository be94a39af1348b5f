/**
 * Token buckets for per-connection rates. A bucket holds up to one second's worth (the burst) and
 * refills continuously by the monotonic clock, so a client may send in bursts as long as its
 * average stays within the rate.
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  /** `perSecond` 0: unlimited. */
  constructor(readonly perSecond: number, now = performance.now()) {
    this.#tokens = perSecond;
    this.#at = now;
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.perSecond, this.#tokens + ((now - this.#at) / 1000) * this.perSecond);
    this.#at = now;
  }

  /** Takes `n` tokens if there are that many; false (and nothing taken) otherwise. */
  tryTake(n = 1, now = performance.now()): boolean {
    if (this.perSecond === 0) return true;
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /**
   * Takes `n` tokens even into debt (a frame already read must be handled) and returns how long
   * the caller should stop reading until the bucket is back at zero: 0 when within the rate.
   */
  takeOrWait(n: number, now = performance.now()): number {
    if (this.perSecond === 0) return 0;
    this.#refill(now);
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : Math.ceil((-this.#tokens / this.perSecond) * 1000);
  }
}
