/** A steady SDK producer for failover runs (tests/sdk_failover_test.ts, scripts/soak_failover.ts). */
import type { EdgeBridgeClient, PublishAck } from "../../src/client/mod.ts";
import { until } from "./wait.ts";

export interface Sent {
  n: number;
  value: string;
  ack?: PublishAck;
  error?: unknown;
}

/** `<prefix><n>:` padded to ~1 KB for every fourth record and to 100 B for the others. */
export function mixedValue(prefix: string, n: number): string {
  const head = `${prefix}${n}:`;
  return head + ".".repeat((n % 4 === 0 ? 1000 : 100) - head.length);
}

export interface SteadyOptions {
  /** Publishes per second, paced by the clock (a late timer catches up). */
  rate: number;
  /** Record n's value (n from 1). */
  valueOf: (n: number) => string;
  /** The producer waits while the client's outbox holds this many unanswered publishes. */
  outboxHighWater?: number;
}

/** Publishes `valueOf(1)`, `valueOf(2)`, ... at `rate` per second until stopped. */
export class SteadyProducer {
  readonly sent: Sent[] = [];
  /** Each ack as it came, in time order: when (performance.now() and wall clock) and at which epoch. */
  readonly acks: { at: number; wall: number; epoch: number }[] = [];
  /** Epochs of first writes (not duplicate acks): which lives wrote for this producer. */
  readonly epochs = new Set<number>();
  /** Times the producer waited on a full outbox (outboxHighWater). */
  pauses = 0;
  #stop = false;
  #loop?: Promise<void>;

  constructor(readonly client: EdgeBridgeClient, readonly topic: string, readonly opts: SteadyOptions) {}

  start(): void {
    const highWater = this.opts.outboxHighWater ?? Infinity;
    this.#loop = (async () => {
      const t0 = performance.now();
      let paused = false;
      while (!this.#stop) {
        const due = Math.floor(((performance.now() - t0) / 1000) * this.opts.rate);
        while (this.sent.length < due && this.client.pending < highWater) this.#publishNext();
        if (this.sent.length < due && !paused) this.pauses++;
        paused = this.sent.length < due;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
  }

  #publishNext(): void {
    const s: Sent = { n: this.sent.length + 1, value: "" };
    s.value = this.opts.valueOf(s.n);
    this.sent.push(s);
    this.client.publish(this.topic, s.value).then(
      (ack) => {
        s.ack = ack;
        this.acks.push({ at: performance.now(), wall: Date.now(), epoch: ack.epoch });
        if (!ack.duplicate) this.epochs.add(ack.epoch);
      },
      (e) => (s.error = e),
    );
  }

  /** Whether a first write (not a duplicate ack) came at `epoch` or a later one. */
  ackedSince(epoch: number): boolean {
    for (const e of this.epochs) if (e >= epoch) return true;
    return false;
  }

  /**
   * The first ack at `epoch` or later that came at or after `since` (a `performance.now()` time, or a
   * wall-clock one with `wall`). A duplicate ack carries its first write's (older) epoch, so it does
   * not count: only the new live's own writes do.
   */
  firstAck(epoch: number, since: number, wall = false) {
    const time = (a: { at: number; wall: number }) => wall ? a.wall : a.at;
    let lo = 0, hi = this.acks.length; // acks are in time order: find the first at or after `since`
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (time(this.acks[mid]) < since) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < this.acks.length; i++) if (this.acks[i].epoch >= epoch) return this.acks[i];
    return undefined;
  }

  /** Stops publishing and waits (at most `timeoutMs`) until every publish is answered. */
  async stop(timeoutMs: number): Promise<void> {
    this.#stop = true;
    await this.#loop;
    await until(
      `every publish answered (${this.sent.filter((s) => !s.ack && !s.error).length} not yet)`,
      () => this.sent.every((s) => s.ack || s.error),
      timeoutMs,
    );
  }
}
