/**
 * Who should be live: pure decisions shared by both coordinators, so the rules
 * are the same whether peers are seen through heartbeats or through status files
 * in a shared directory. No clocks here: callers pass durations they measured
 * with their own monotonic clock.
 */

export type Role = "init" | "backup" | "activating" | "live" | "draining" | "fenced" | "stopped";

/** What a node says about itself (in a heartbeat or a status file). */
export interface NodeView {
  node: string;
  priority: number;
  role: Role;
  epoch: number;
  kafkaUp: boolean;
  /** How long this node has been a backup with Kafka reachable, by its own clock (0 if not). */
  readyForMs: number;
  url?: string;
}

export interface HandoverRules {
  allowFailback: boolean;
  failbackHoldDownMs: number;
  kafkaLossTimeoutMs: number;
}

/** Orders candidates: reachable Kafka first, then priority, then node id (stable tie-break). */
export function better(a: NodeView, b: NodeView): boolean {
  if (a.kafkaUp !== b.kafkaUp) return a.kafkaUp;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.node < b.node;
}

/** Among the candidates (self included), is `self` the one that should become live? */
export function isBestCandidate(self: NodeView, others: NodeView[]): boolean {
  return others.filter((o) => o.role === "backup" || o.role === "init").every((o) => better(self, o));
}

/** Two lives: the higher epoch stays, then the lower node id. True if `self` must step down. */
export function losesLiveConflict(self: NodeView, other: NodeView): boolean {
  if (self.epoch !== other.epoch) return self.epoch < other.epoch;
  return self.node > other.node;
}

/**
 * Whether the live should hand over to one of the backups, and why. Kafka loss
 * hands over only to a backup that has reached Kafka throughout (if both lost it,
 * nobody moves, including while they reconnect one after the other);
 * failback only to a higher-priority backup healthy for the hold-down time.
 */
export function handoverReason(
  self: NodeView,
  kafkaDownForMs: number,
  backups: NodeView[],
  rules: HandoverRules,
): { to: string; reason: string } | undefined {
  const healthy = backups.filter((b) => b.role === "backup" && b.kafkaUp);
  // The backup must have reached Kafka for the whole loss timeout: after an outage both
  // nodes saw (a broker restart), the one that happens to reconnect first is no reason to move.
  const steady = healthy.filter((b) => b.readyForMs >= rules.kafkaLossTimeoutMs);
  if (!self.kafkaUp && kafkaDownForMs >= rules.kafkaLossTimeoutMs && steady.length > 0) {
    const to = steady.reduce((a, b) => (better(a, b) ? a : b));
    return {
      to: to.node,
      reason: `Kafka unreachable for ${Math.round(kafkaDownForMs)} ms; ${to.node} reaches Kafka`,
    };
  }
  if (rules.allowFailback && self.kafkaUp) {
    const returning = healthy.filter((b) =>
      b.priority > self.priority && b.readyForMs >= rules.failbackHoldDownMs
    );
    if (returning.length > 0) {
      const to = returning.reduce((a, b) => (better(a, b) ? a : b));
      return { to: to.node, reason: `failback to ${to.node} (priority ${to.priority} > ${self.priority})` };
    }
  }
  return undefined;
}

/** Counts voluntary handovers in a sliding minute, to damp flapping. */
export class HandoverBudget {
  #times: number[] = [];
  constructor(readonly perMinute: number) {}

  allows(now: number): boolean {
    this.#times = this.#times.filter((t) => now - t < 60_000);
    return this.#times.length < this.perMinute;
  }

  record(now: number): void {
    this.#times.push(now);
  }
}
