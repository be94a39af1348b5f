/**
 * This node's HA role. Coordinators decide; HaNode carries the decision out in
 * order (fence Kafka before serving; drain before letting go) and logs each
 * transition once. It gates the server through `role()`, never reaching into
 * sessions itself.
 */
import type { Logger } from "../observability/logger.ts";
import type { BridgeMetrics } from "../observability/metrics.ts";
import { settlesWithin } from "../util/deadline.ts";
import type { NodeView, Role } from "./election.ts";

export interface HaActions {
  /**
   * Take over the pair's Kafka transactional id (fences any older live). Resolves with the epoch
   * of this activation, which Kafka's transaction coordinator orders (unique to the pair).
   */
  activate(): Promise<number>;
  /** Close client sessions gracefully by `deadline` (monotonic), telling them where the live is if known. */
  drain(reason: string, deadline: number): Promise<void>;
  /** Let go of Kafka producers. */
  deactivate(): Promise<void>;
  /**
   * The step-down deadline passed: let go at once of whatever drain and deactivate still hold
   * (connections, the producer, consumers), without waiting for Kafka. Returns what it let go,
   * for the log. Safe because the next live's activation fences the producer and the group.
   */
  abandon(): string[];
  /**
   * Drops the producer at once (an activation past its deadline): no retry of its requests goes
   * out after this, so once the request already sent is answered, it can fence nobody.
   */
  dropProducer(): void;
  /** Whether the Kafka producer is active (false after a Kafka error or fencing). */
  isActive(): boolean;
}

export interface HaTimeouts {
  /** The whole step-down (drain, then deactivate) ends by then; what is left is abandoned. */
  stepDownTimeoutMs: number;
  /** An activation that takes longer is given up (the node stays backup and may try again). */
  activationTimeoutMs: number;
}

const MESSAGES: Partial<Record<Role, string>> = {
  backup: "backup announced",
  draining: "stepping down",
  fenced: "fenced by a newer live",
  stopped: "stopped serving",
};

/** Serves as the sessions' NodeIdentity (src/session/deps.ts), structurally: HA does not import sessions. */
export class HaNode {
  #role: Role = "init";
  #epoch = 0;
  #busy: Promise<unknown> = Promise.resolve();
  #pending = 0;
  /** Step-downs requested and not finished: the node serves nothing meanwhile. */
  #stepDownsRequested = 0;
  #watchedAt = 0;
  #stallLimitMs?: number;
  #liveUrl?: string;
  #reactivating = false;
  /** Monotonic time this node was last fenced by a newer live, if ever. */
  fencedAt?: number;
  /** Told every role change, after it happened (systemd's STATUS=, for one). */
  onRoleChange?: (role: Role, epoch: number, reason: string) => void;

  constructor(
    readonly node: string,
    readonly priority: number,
    readonly url: string | undefined,
    readonly lockNoun: "lock" | "role",
    readonly actions: HaActions,
    readonly metrics: BridgeMetrics,
    readonly log: Logger,
    readonly timeouts: HaTimeouts = { stepDownTimeoutMs: 5_000, activationTimeoutMs: 30_000 },
  ) {
    metrics.haRole.set({ role: "init" }, 1);
  }

  /**
   * The role as clients are served: a live whose coordinator's stall watch is overdue (the
   * process was stopped or frozen, and a backup may have taken over) reads as draining, before
   * any timer has run. After SIGCONT the event loop handles the sockets that became readable
   * before its timers, so without this a zombie would take a client's publish or group commit,
   * or hand out a fetched message, before noticing it stalled.
   */
  role(): Role {
    if (this.#role === "live" && this.#stepDownsRequested > 0) return "draining";
    if (this.#role === "live" && this.#stallLimitMs !== undefined) {
      if (performance.now() - this.#watchedAt > this.#stallLimitMs) return "draining";
    }
    return this.#role;
  }

  /** The role this node holds, whether or not its stall watch is overdue (for the coordinator). */
  get heldRole(): Role {
    return this.#role;
  }

  /** The coordinator's stall watch ran at `now`; past `limitMs` without it, the node does not serve. */
  watched(now: number, limitMs: number): void {
    this.#watchedAt = now;
    this.#stallLimitMs = limitMs;
  }

  epoch(): number {
    return this.#epoch;
  }

  get isLive(): boolean {
    return this.role() === "live";
  }

  /** Where clients should go, when another node is live. */
  get liveUrl(): string | undefined {
    return this.#role === "live" ? this.url : this.#liveUrl;
  }

  set liveHint(url: string | undefined) {
    this.#liveUrl = url;
  }

  view(kafkaUp: boolean, readyForMs: number): NodeView {
    return {
      node: this.node,
      priority: this.priority,
      role: this.#role,
      epoch: this.#epoch,
      kafkaUp,
      readyForMs,
      url: this.url,
    };
  }

  /** Raises the known epoch (seen from a peer or the state file) without changing role. */
  observeEpoch(epoch: number): void {
    if (epoch > this.#epoch && this.#role !== "live") this.#epoch = epoch;
  }

  #set(to: Role, reason: string, extra: Record<string, unknown> = {}): void {
    const from = this.#role;
    if (from === to) return;
    this.#role = to;
    this.metrics.haRole.set({ role: from }, 0);
    this.metrics.haRole.set({ role: to }, 1);
    this.metrics.haTransitions.inc({ from, to });
    this.metrics.haEpoch.set(this.#epoch);
    const msg = to === "live" ? `live: obtained the live ${this.lockNoun}` : MESSAGES[to] ?? `role ${to}`;
    const level = to === "fenced" ? "warn" : to === "activating" ? "debug" : "info";
    this.log[level]({ ha: true, from, to, epoch: this.#epoch, reason, ...extra }, msg);
    this.#notify(to, reason);
  }

  #notify(role: Role, reason: string): void {
    try {
      this.onRoleChange?.(role, this.#epoch, reason);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "a role change listener failed");
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    this.#pending++;
    const run = this.#busy.then(fn, fn).finally(() => this.#pending--);
    this.#busy = run.catch(() => {});
    return run;
  }

  announceBackup(reason: string): void {
    if (this.#role === "init") this.#set("backup", reason);
  }

  /** Whether a step-down was requested and has not finished. */
  get steppingDown(): boolean {
    return this.#stepDownsRequested > 0;
  }

  /** Whether a promote or demote is under way (coordinators decide nothing new meanwhile). */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /**
   * Becomes live: fences Kafka first, and only then serves, under the epoch the activation got
   * from Kafka. False if activation failed or took longer than its deadline.
   */
  promote(reason: string): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#role === "live") return true;
      this.#set("activating", reason);
      const started = performance.now();
      let epoch: number | undefined, failure: string | undefined;
      const activation = this.actions.activate().then(
        (e) => void (epoch = e),
        (e) => void (failure = (e as Error).message),
      );
      if (!(await this.#withinDeadline(activation))) {
        failure =
          `no answer from Kafka within ${this.timeouts.activationTimeoutMs} ms (ha.activationTimeoutMs)`;
      }
      if (failure !== undefined || epoch === undefined) {
        this.#set("backup", `activation failed: ${failure ?? "no epoch"}`, {
          tookMs: Math.round(performance.now() - started),
        });
        return false;
      }
      this.#epoch = epoch;
      this.#set("live", reason, { tookMs: Math.round(performance.now() - started) });
      return true;
    });
  }

  /**
   * Stops serving: drain clients (break before make), release Kafka, become backup (or stopped).
   * Never rejects and always ends in a defined role: by ha.stepDownTimeoutMs, whatever is still
   * letting go (a drain or a producer waiting on a Kafka link that drops packets) is abandoned.
   */
  demote(reason: string, then: "backup" | "stopped" | "fenced" = "backup"): Promise<void> {
    // From the request on, the node serves nothing (role() reads draining), even while the
    // step-down waits its turn behind an activation.
    this.#stepDownsRequested++;
    return this.#serial(async () => {
      if (this.#role !== "live" && this.#role !== "activating") {
        // Already let go (say, a second fencing error behind a first step-down): remember that a
        // newer live exists, so the node holds back, and keep the role.
        if (then === "fenced") this.fencedAt = performance.now();
        else if (then === "stopped") this.#set("stopped", reason);
        return;
      }
      if (then === "fenced") this.fencedAt = performance.now();
      this.#set(then === "fenced" ? "fenced" : "draining", reason);
      const started = performance.now();
      const deadline = started + this.timeouts.stepDownTimeoutMs;
      const lettingGo = (async () => {
        await this.#attempt("drain", () => this.actions.drain(reason, deadline));
        await this.#attempt("deactivate", () => this.actions.deactivate());
      })();
      if (!(await settlesWithin(lettingGo, deadline - performance.now()))) this.#abandon("the step-down");
      this.#set(then === "fenced" ? "backup" : then, reason, {
        tookMs: Math.round(performance.now() - started),
      });
    }).catch((e) => this.log.error({ err: (e as Error).message }, "HA step-down failed"))
      .finally(() => this.#stepDownsRequested--);
  }

  /**
   * Waits for an activation until ha.activationTimeoutMs. Past it, the producer is dropped (no
   * retry goes out), and the claim is held (the role stays activating, or live) until the
   * request already sent is answered or times out: released earlier, a late InitProducerId could
   * fence the next live. True when the activation settled within the deadline.
   */
  async #withinDeadline(activation: Promise<unknown>): Promise<boolean> {
    if (await settlesWithin(activation, this.timeouts.activationTimeoutMs)) return true;
    this.actions.dropProducer();
    this.log.warn(
      { ha: true, activationTimeoutMs: this.timeouts.activationTimeoutMs },
      "activation past its deadline: producer dropped; holding the claim until Kafka's answer is in",
    );
    await settlesWithin(activation, this.timeouts.activationTimeoutMs);
    return false;
  }

  async #attempt(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.log.warn({ ha: true, err: (e as Error).message }, `step-down: ${what} failed; going on`);
    }
  }

  #abandon(what: string): void {
    let abandoned: string[] = [];
    try {
      abandoned = this.actions.abandon();
    } catch (e) {
      abandoned = [`(abandon failed: ${(e as Error).message})`];
    }
    this.log.warn(
      { ha: true, abandoned, stepDownTimeoutMs: this.timeouts.stepDownTimeoutMs },
      `${what} ran past its deadline: let go without waiting for Kafka (the next live's fencing covers it)`,
    );
  }

  /**
   * After a Kafka error (or a refused request that needs a fresh producer epoch) the sink
   * waits. The coordinator calls this only while it can confirm this node is still the live
   * (a peer heard as backup, or the lock verified): a fresh InitProducerId fences whoever
   * holds the id, so a node that cannot confirm its claim steps down instead. The new
   * activation's epoch replaces the old one.
   */
  async reactivate(): Promise<void> {
    if (this.#role !== "live" || this.#reactivating || this.actions.isActive()) return;
    this.#reactivating = true;
    try {
      // Checked again in turn: a step-down queued ahead must not be followed by taking the id back.
      const epoch = await this.#serial(async () => {
        if (this.#role !== "live") return undefined;
        // Bounded like an activation: a step-down queued behind must not wait on a dead link.
        let got: number | undefined, failure: unknown;
        const activation = this.actions.activate().then((e) => void (got = e), (e) => void (failure = e));
        if (!(await this.#withinDeadline(activation))) {
          throw new Error(`no answer from Kafka within ${this.timeouts.activationTimeoutMs} ms`);
        }
        if (failure !== undefined) throw failure;
        if (this.#stepDownsRequested > 0) { // the claim went while Kafka answered: do not adopt it
          this.actions.dropProducer();
          return undefined;
        }
        return got;
      });
      if (epoch !== undefined) {
        this.#epoch = epoch;
        this.metrics.haEpoch.set(epoch);
        this.log.info({ ha: true, epoch }, "live: producer re-activated");
        this.#notify("live", "producer re-activated");
      }
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, "re-activation failed; will retry");
    } finally {
      this.#reactivating = false;
    }
  }
}
