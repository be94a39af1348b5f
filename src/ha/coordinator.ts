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
  #budgetWarned = false;
  /**
   * Promotes and demotes running beside the loop, each with what follows it. More than one at a
   * time: the watch may begin a step-down while a promotion's follow-up still runs.
   */
  readonly #transitions = new Set<Promise<void>>();
  /** When the stall watch last ran (monotonic). */
  #watchedAt = performance.now();
  #watch?: ReturnType<typeof setInterval>;

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
  /** A gap between two runs of the stall watch longer than this is a stall. */
  protected abstract stallLimitMs(): number;
  /** The event loop was away for `gapMs` (SIGSTOP, a frozen VM, a blocked loop). */
  protected abstract onStall(gapMs: number, now: number): void;
  /**
   * Whether this node can confirm, now, that it is still the pair's live: a fresh
   * InitProducerId fences whoever holds the id, so only then may a live take it again.
   */
  protected abstract claimConfirmed(now: number): boolean;

  /** Runs beside the stall watch, whatever the tick is waiting for. */
  protected onWatch(_now: number): void {}

  /** How long the loop sleeps before the next tick (a coordinator may poll faster at times). */
  protected nextTickMs(): number {
    return this.tickMs;
  }

  /** Whether a promote or demote is under way: no new decision until it ends. */
  protected get transitioning(): boolean {
    return this.#transitions.size > 0 || this.ha.busy;
  }

  /**
   * Runs a promote or demote beside the loop: activation may take seconds on a slow Kafka link
   * and a drain waits for clients, and neither must hold up the stall watch or the beats.
   * `then` runs after it (e.g. write the state file, release the lock); errors are logged.
   */
  protected begin<T>(transition: Promise<T>, then?: (result: T) => Promise<void> | void): void {
    const t: Promise<void> = transition.then((r) => then?.(r)).catch((e) =>
      this.log.error({ err: (e as Error).message }, "HA transition failed")
    ).finally(() => this.#transitions.delete(t));
    this.#transitions.add(t);
  }

  /**
   * The stall watch: the lateness of a timer of its own, which does no work, so that only the
   * event loop being away counts (SIGSTOP, a frozen VM, a CPU-starved process), never the
   * length of an activation or a drain. Timers that act on the node's view (the beats) call it
   * first, so a node back from a stall never speaks before it has noticed.
   */
  protected checkStall(now = performance.now()): void {
    const gap = now - this.#watchedAt;
    this.#watchedAt = now;
    if (gap > this.stallLimitMs()) this.onStall(gap, now);
    this.ha.watched(now, this.stallLimitMs());
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
    this.#watchedAt = performance.now();
    this.#watch = setInterval(() => {
      const now = performance.now();
      this.checkStall(now);
      this.onWatch(now);
    }, Math.min(this.tickMs, 50));
    try {
      while (!signal.aborted) {
        const now = performance.now();
        this.checkStall(now);
        this.readiness.update(this.kafka.up, this.ha.role() === "backup", now);
        try {
          await this.tick(now);
        } catch (e) {
          this.log.error({ err: e }, "HA coordinator tick failed");
        }
        if (this.ha.isLive && !signal.aborted && !this.transitioning) this.#renewProducer(now);
        await sleep(this.nextTickMs(), signal);
      }
      // Every transition, also one the watch begins meanwhile. The watch runs until they are done:
      // a claim that lapses still steps the node down, and role() stays truthful for onShutdown
      // (without the watch, a live reads as draining once a stall's length has passed).
      while (this.#transitions.size > 0) await Promise.all([...this.#transitions]);
    } finally {
      clearInterval(this.#watch);
    }
    await this.onShutdown();
  }

  /**
   * The sink lost its producer (a Kafka error, or a refused request that needs a fresh epoch).
   * Taking the id again is an activation: it fences whoever holds it. A live that can confirm
   * its claim does so once Kafka answers; one that cannot (it hears no peer, its lock is in
   * doubt) steps down instead, and the election decides, so a zombie never fences the live.
   */
  #renewProducer(now: number): void {
    if (this.ha.actions.isActive() || !this.kafka.up) return;
    if (this.claimConfirmed(now)) {
      const before = this.ha.epoch();
      this.begin(this.ha.reactivate(), () => this.ha.epoch() !== before ? this.afterRenewal() : undefined);
      return;
    }
    this.begin(
      this.ha.demote(
        "the Kafka producer needs a fresh epoch and nothing confirms this node is still the live " +
          "(no peer heard, or the lock in doubt): stepping down rather than fence a newer live",
      ),
      () => this.afterUnconfirmedStepDown(now),
    );
  }

  /** The live re-activated under a new epoch (e.g. file-lock: the state file names it). */
  protected afterRenewal(): Promise<void> | void {}

  /** After stepping down for want of a confirmed claim: hold back as a fenced node does. */
  protected afterUnconfirmedStepDown(now: number): void {
    this.ha.fencedAt = now;
  }
}
