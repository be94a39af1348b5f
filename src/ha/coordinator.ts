/** What both coordinators share: the loop, Kafka-health bookkeeping and the zombie guard. */
import type { Logger } from "../observability/logger.ts";
import { sleep } from "../util/sleep.ts";
import { HandoverBudget, type HandoverRules } from "./election.ts";
import type { HaNode } from "./node.ts";

export interface KafkaStatus {
  readonly up: boolean;
}

export interface Coordinator {
  /** Runs until the signal aborts; then hands over (or pauses) as configured. */
  run(signal: AbortSignal): Promise<void>;
}

export interface CoordinatorOptions extends HandoverRules {
  failoverOnShutdown: boolean;
  maxHandoversPerMinute: number;
}

/** Tracks how long Kafka has been down, or how long this backup has been ready, by the monotonic clock. */
export class Readiness {
  #downSince?: number;
  #readySince?: number;

  update(kafkaUp: boolean, isBackup: boolean, now: number): void {
    if (kafkaUp) this.#downSince = undefined;
    else this.#downSince ??= now;
    if (kafkaUp && isBackup) this.#readySince ??= now;
    else this.#readySince = undefined;
  }

  kafkaDownFor(now: number): number {
    return this.#downSince === undefined ? 0 : now - this.#downSince;
  }

  readyFor(now: number): number {
    return this.#readySince === undefined ? 0 : now - this.#readySince;
  }
}

export abstract class BaseCoordinator implements Coordinator {
  protected readonly budget: HandoverBudget;
  protected readonly readiness = new Readiness();
  protected lastTick = performance.now();
  #budgetWarned = false;

  constructor(
    protected readonly ha: HaNode,
    protected readonly kafka: KafkaStatus,
    protected readonly opts: CoordinatorOptions,
    protected readonly log: Logger,
    protected readonly tickMs: number,
  ) {
    this.budget = new HandoverBudget(opts.maxHandoversPerMinute);
  }

  protected abstract tick(now: number): Promise<void>;
  protected abstract onShutdown(): Promise<void>;

  /**
   * A node whose own loop stalled for longer than a peer waits before taking over
   * (SIGSTOP, a frozen VM) may already be replaced, and what it knows of its peers
   * is stale. A live steps down at once rather than serve as a zombie. Kafka
   * fencing catches whatever slips through.
   */
  protected stalled(now: number, limitMs: number): boolean {
    const gap = now - this.lastTick;
    this.lastTick = now;
    return gap > limitMs;
  }

  /** Voluntary handovers (failback, Kafka loss) respect the flap budget. */
  protected mayHandOver(now: number): boolean {
    if (this.budget.allows(now)) {
      this.#budgetWarned = false;
      return true;
    }
    if (!this.#budgetWarned) {
      this.log.warn(
        { ha: true, perMinute: this.opts.maxHandoversPerMinute },
        "handover held back: too many role changes this minute",
      );
      this.#budgetWarned = true;
    }
    return false;
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = performance.now();
      this.readiness.update(this.kafka.up, this.ha.role() === "backup", now);
      try {
        await this.tick(now);
      } catch (e) {
        this.log.error({ err: e }, "HA coordinator tick failed");
      }
      if (this.ha.isLive && !signal.aborted) void this.maybeReactivate();
      await sleep(this.tickMs, signal);
    }
    await this.onShutdown();
  }

  protected maybeReactivate(): Promise<void> {
    return this.kafka.up ? this.ha.reactivate() : Promise.resolve();
  }
}
