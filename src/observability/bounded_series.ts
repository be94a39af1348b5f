/**
 * Bounds the series of a gauge whose labels clients choose (the consumer-lag gauge is labelled with
 * group names): at most `max` label sets at once. A series is removed when the last subscription
 * that sets it ends, so the set is pruned as clients come and go; while it is full, new label sets
 * are not exported (counted in `dropped` instead) rather than growing /metrics without limit.
 */
export interface LabelledGauge {
  set(labels: Record<string, string | number>, value: number): void;
  remove(labels: Record<string, string | number>): void;
}

export class BoundedSeries {
  /** Label set (as a key) -> how many holders set it. */
  readonly #refs = new Map<string, { labels: Record<string, string | number>; holders: number }>();

  constructor(
    readonly gauge: LabelledGauge,
    readonly max: number,
    readonly onDropped: () => void = () => {},
  ) {}

  get size(): number {
    return this.#refs.size;
  }

  /** One holder's view (a subscription): it sets series and releases all of them when it ends. */
  holder(): SeriesHolder {
    const held = new Set<string>();
    return {
      set: (labels, value) => {
        const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));
        let ref = this.#refs.get(key);
        if (!held.has(key)) {
          if (!ref) {
            if (this.#refs.size >= this.max) return this.onDropped();
            ref = { labels, holders: 0 };
            this.#refs.set(key, ref);
          }
          ref.holders++;
          held.add(key);
        }
        this.gauge.set(labels, value);
      },
      release: () => {
        for (const key of held) {
          const ref = this.#refs.get(key);
          if (!ref) continue;
          if (--ref.holders === 0) {
            this.#refs.delete(key);
            this.gauge.remove(ref.labels);
          }
        }
        held.clear();
      },
    };
  }
}

export interface SeriesHolder {
  set(labels: Record<string, string | number>, value: number): void;
  release(): void;
}
