/**
 * Live marks: what a heartbeat-mode node learns from Kafka about a live it cannot hear.
 *
 * A cut heartbeat link looks, from each side, like a dead peer. The backup takes over once
 * (it cannot tell), fencing the old live through Kafka. Without more, the fenced node would
 * take over again once its hold-back ran out, and the two would fence each other back and
 * forth for as long as the link stays cut. So a live that hears no peer writes a mark
 * ("l/<node>": its epoch and a counter) to the pair's dedupe log every heartbeat interval;
 * every node follows that log. A node that hears no live but reads marks that keep advancing
 * knows a live still serves, and does not fence it.
 *
 * A mark counts only when it advances past one this node has already read: the first one
 * read (at start-up, from the compacted log) may be old. Time is this node's monotonic clock
 * at reading, never the writer's.
 */

/** Marks written longer ago than this (by the wall clocks) only set the baseline. */
export const OLD_MARK_MS = 10_000;

/** How many of a writer's latest advances are kept to judge the pace of its marks. */
const PACE_SAMPLES = 5;

interface Seen {
  epoch: number;
  seq: number;
  /**
   * When marks from this node that advanced past the one before were read (this node's monotonic
   * clock), the latest last; at most PACE_SAMPLES, all of one epoch. Empty: only a baseline.
   */
  advances: number[];
}

export class LiveMarks {
  readonly #seen = new Map<string, Seen>();

  constructor(readonly self: string) {}

  /**
   * A mark read back from the log. `age` is how long ago it was written by the wall clocks (the
   * record's timestamp against this host's): a mark older than OLD_MARK_MS is history read back
   * (a restarted node replays the log's tail, one mark an interval), never a sign of a live now.
   * Only that coarse bound uses wall clocks; freshness itself is this node's monotonic clock.
   */
  observe(node: string, epoch: number, seq: number, now: number, age = 0): void {
    if (node === this.self) return;
    const prev = this.#seen.get(node);
    if (!prev || age > OLD_MARK_MS) {
      this.#seen.set(node, { epoch, seq, advances: [] });
      return;
    }
    const advanced = epoch > prev.epoch || (epoch === prev.epoch && seq > prev.seq);
    if (!advanced) return;
    // A new epoch is a new activation: the old one's pace says nothing about it.
    const advances = epoch === prev.epoch ? [...prev.advances, now].slice(-PACE_SAMPLES) : [now];
    this.#seen.set(node, { epoch, seq, advances });
  }

  /**
   * Another node whose marks advanced within the last `maxAgeMs`: a live serving now. `lastHeard`
   * says when this node last heard a node's heartbeat: marks read before that are left out. A live
   * marks only while it hears no peer, so marks from before this node heard it are history (the
   * live was alone, and stopped marking once it heard this node); only marks that advance after its
   * heartbeats stopped coming say it serves on, cut off. A node heard now is judged by its beats.
   *
   * A live behind a slow Kafka link writes (and this node reads) its marks further apart than its
   * heartbeat interval; a fixed `maxAgeMs` would then read a live that still serves as gone between
   * two of its marks, and fence it. So the window stretches to twice the longest gap between its
   * latest advances (read since it was last heard; marks read in one fetch arrive together, so the
   * longest gap, not the last, is the pace). A gap over OLD_MARK_MS is a pause, not a pace, and
   * stretches nothing: a live whose marks come rarer than that is not told from a dead one.
   */
  activeLive(
    now: number,
    maxAgeMs: number,
    lastHeard: (node: string) => number | undefined = () => undefined,
  ): { node: string; epoch: number } | undefined {
    let best: { node: string; epoch: number } | undefined;
    for (const [node, s] of this.#seen) {
      const heard = lastHeard(node) ?? -Infinity;
      const advances = s.advances.filter((t) => t > heard);
      const latest = advances.at(-1);
      if (latest === undefined) continue;
      let paceMs = 0;
      for (let i = 1; i < advances.length; i++) {
        const gap = advances[i] - advances[i - 1];
        if (gap <= OLD_MARK_MS) paceMs = Math.max(paceMs, gap);
      }
      if (now - latest > Math.max(maxAgeMs, 2 * paceMs)) continue;
      if (!best || s.epoch > best.epoch) best = { node, epoch: s.epoch };
    }
    return best;
  }
}
