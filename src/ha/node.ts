/**
 * This node's HA role. Coordinators decide; HaNode carries the decision out in
 * order (fence Kafka before serving; drain before letting go) and logs each
 * transition once. It gates the server through `role()`, never reaching into
 * sessions itself.
 */
import type { Logger } from "../observability/logger.ts";
import type { BridgeMetrics } from "../observability/metrics.ts";
import type { NodeIdentity } from "../session/session.ts";
import type { NodeView, Role } from "./election.ts";

export interface HaActions {
  /** Take over the pair's Kafka transactional id (fences any older live). */
  activate(): Promise<void>;
  /** Close client sessions gracefully, telling them where the live is if known. */
  drain(reason: string): Promise<void>;
  /** Let go of Kafka producers. */
  deactivate(): Promise<void>;
  /** Whether the Kafka producer is active (false after a Kafka error or fencing). */
  isActive(): boolean;
}

const MESSAGES: Partial<Record<Role, string>> = {
  backup: "backup announced",
  draining: "stepping down",
  fenced: "fenced by a newer live",
  stopped: "stopped serving",
};

export class HaNode implements NodeIdentity {
  #role: Role = "init";
  #epoch = 0;
  #busy: Promise<unknown> = Promise.resolve();
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
  ) {
    metrics.haRole.set({ role: "init" }, 1);
  }

  role(): Role {
    return this.#role;
  }

  epoch(): number {
    return this.#epoch;
  }

  get isLive(): boolean {
    return this.#role === "live";
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
    try {
      this.onRoleChange?.(to, this.#epoch, reason);
    } catch (e) {
      this.log.error({ err: (e as Error).message }, "a role change listener failed");
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(fn, fn);
    this.#busy = run.catch(() => {});
    return run;
  }

  announceBackup(reason: string): void {
    if (this.#role === "init") this.#set("backup", reason);
  }

  /** Becomes live at `epoch`: fences Kafka first, and only then serves. False if activation failed. */
  promote(epoch: number, reason: string): Promise<boolean> {
    return this.#serial(async () => {
      if (this.#role === "live") return true;
      this.#epoch = epoch;
      this.#set("activating", reason);
      try {
        await this.actions.activate();
      } catch (e) {
        this.#set("backup", `activation failed: ${(e as Error).message}`);
        return false;
      }
      this.#set("live", reason);
      return true;
    });
  }

  /** Stops serving: drain clients (break before make), release Kafka, become backup (or stopped). */
  demote(reason: string, then: "backup" | "stopped" | "fenced" = "backup"): Promise<void> {
    return this.#serial(async () => {
      if (this.#role !== "live" && this.#role !== "activating") {
        if (then !== "backup") this.#set(then, reason);
        return;
      }
      if (then === "fenced") this.fencedAt = performance.now();
      this.#set(then === "fenced" ? "fenced" : "draining", reason);
      await this.actions.drain(reason);
      await this.actions.deactivate();
      this.#set(then === "fenced" ? "backup" : then, reason);
    });
  }

  /**
   * After a Kafka error (or a refused request that needs a fresh producer epoch) the sink
   * waits; the live takes the id back once Kafka answers, and only while it is live.
   */
  async reactivate(): Promise<void> {
    if (this.#role !== "live" || this.#reactivating || this.actions.isActive()) return;
    this.#reactivating = true;
    try {
      // Checked again in turn: a step-down queued ahead must not be followed by taking the id back.
      const done = await this.#serial(async () => {
        if (this.#role !== "live") return false;
        await this.actions.activate();
        return true;
      });
      if (done) this.log.info({ ha: true, epoch: this.#epoch }, "live: producer re-activated");
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, "re-activation failed; will retry");
    } finally {
      this.#reactivating = false;
    }
  }
}
