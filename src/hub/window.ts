/**
 * The recent records of one partition, shared by every broadcast subscriber of a
 * topic: a window bounded by count and bytes, filled by the hub's one reader. A
 * subscriber is only a position in it; the window never waits for anyone.
 */
import type { Delivery } from "../kafka/types.ts";
import { type Encoding, messageBody } from "../protocol/mod.ts";

/** A record as the hub holds it: its wire frame encoded once per encoding, shared by every subscriber. */
export class HubRecord {
  readonly offset: number;
  /** What holding it costs, roughly: the bytes plus room for two encoded frames. */
  readonly bytes: number;
  #frames?: Partial<Record<Encoding, string>>;

  constructor(readonly delivery: Delivery, readonly clientTopic: string) {
    this.offset = Number(delivery.offset);
    let headerBytes = 0;
    for (const k in delivery.headers) headerBytes += k.length + delivery.headers[k].length;
    this.bytes = 256 +
      3 * ((delivery.value?.byteLength ?? 0) + (delivery.key?.byteLength ?? 0) + headerBytes);
  }

  /** The message frame for one subscription: only `"sub"` differs between subscribers. */
  frame(subJson: string, encoding: Encoding): string {
    this.#frames ??= {};
    let tail = this.#frames[encoding];
    if (tail === undefined) {
      tail = JSON.stringify(messageBody(this.clientTopic, this.delivery, encoding)).slice(1);
      this.#frames[encoding] = tail;
    }
    return `{"op":"message","sub":${subJson},${tail}`;
  }
}

export interface WindowLimits {
  maxRecords: number;
  maxBytes: number;
}

export class PartitionWindow {
  #records: HubRecord[] = [];
  #head = 0;
  bytes = 0;
  /** The lowest position served from here: every record the reader fetched at or above it is held. */
  low: number;
  /** The reader's next offset. */
  next: number;

  /** Where the hub began reading this partition: subscribers that came before start there. */
  constructor(readonly partition: number, readonly start: number, readonly limits: WindowLimits) {
    this.low = start;
    this.next = start;
  }

  get length(): number {
    return this.#records.length - this.#head;
  }

  /** Adds the reader's next record; one it already has (a re-fetch) is ignored. Evicts the oldest past the limits. */
  append(r: HubRecord): boolean {
    if (r.offset < this.next) return false;
    this.#records.push(r);
    this.bytes += r.bytes;
    this.next = r.offset + 1;
    while (this.length > 1 && (this.length > this.limits.maxRecords || this.bytes > this.limits.maxBytes)) {
      const old = this.#records[this.#head];
      this.#records[this.#head++] = undefined as unknown as HubRecord;
      this.bytes -= old.bytes;
      this.low = old.offset + 1;
    }
    if (this.#head >= 1024 && this.#head * 2 >= this.#records.length) {
      this.#records = this.#records.slice(this.#head);
      this.#head = 0;
    }
    return true;
  }

  /** Whether a subscriber at `position` can be served from here (else it needs a catch-up reader). */
  covers(position: number): boolean {
    return position >= this.low;
  }

  /** Up to `max` records at or after `position`, oldest first. */
  from(position: number, max: number): HubRecord[] {
    // Offsets grow but need not be contiguous (transaction markers, compaction): search, do not index.
    let lo = this.#head, hi = this.#records.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#records[mid].offset < position) lo = mid + 1;
      else hi = mid;
    }
    return this.#records.slice(lo, Math.min(this.#records.length, lo + max));
  }
}
