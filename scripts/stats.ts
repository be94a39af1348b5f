/** Order statistics the benchmark scripts report. */

/** The middle sample (the upper one of an even count). */
export function median(xs: number[]): number {
  return percentile(xs, 0.5);
}

/** The sample at fraction p (0..1) of the sorted samples, by the nearest-rank-below rule. */
export function percentile(xs: number[], p: number): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}
