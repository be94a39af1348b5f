/**
 * Watches whether Kafka can be reached, for /readyz, metrics and logs. Logs one
 * line per change ("Kafka connected" / "Kafka lost"), not one per probe.
 */
import type { Logger } from "../observability/logger.ts";
import type { KafkaCatalog } from "./types.ts";
import { sleep } from "../util/sleep.ts";

export class KafkaHealth {
  #up = false;
  #lastError = "not checked yet";
  #listeners = new Set<(up: boolean) => void>();

  constructor(
    readonly catalog: KafkaCatalog,
    readonly intervalMs: number,
    readonly brokers: string[],
    readonly log: Logger,
  ) {}

  get up(): boolean {
    return this.#up;
  }

  get lastError(): string {
    return this.#lastError;
  }

  onChange(fn: (up: boolean) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  async check(): Promise<boolean> {
    let up = true;
    // A probe that hangs counts as down: peers and /readyz must not see a stale "up".
    const limitMs = Math.max(1000, 2 * this.intervalMs);
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        this.catalog.ping(),
        new Promise((
          _,
          reject,
        ) => (timer = setTimeout(() => reject(new Error(`no answer within ${limitMs} ms`)), limitMs))),
      ]);
    } catch (e) {
      up = false;
      this.#lastError = (e as Error).message;
    } finally {
      clearTimeout(timer);
    }
    if (up !== this.#up) {
      this.#up = up;
      if (up) this.log.info({ brokers: this.brokers }, "Kafka connected");
      else this.log.warn({ brokers: this.brokers, error: this.#lastError }, "Kafka lost");
      for (const fn of this.#listeners) fn(up);
    }
    return up;
  }

  /** Probes until the signal aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.check();
      await sleep(this.intervalMs, signal);
    }
  }
}
