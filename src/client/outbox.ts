/**
 * Publishes not yet answered, in seq order. Each keeps its seq across resends, which is
 * what lets the bridge recognise a resend (exactly-once). Bounded by count and bytes so
 * a long outage cannot grow it without limit.
 */
import type { PublishFrame } from "../protocol/frames.ts";
import { OutboxFullError } from "./errors.ts";

export interface OutboxLimits {
  /** Most unanswered publishes held (default 10000). */
  maxMessages?: number;
  /** Most bytes of encoded publish frames held (default 16 MiB). */
  maxBytes?: number;
}

/** A publish frame as the SDK writes it: `acked` is filled in at each send. */
export type OutgoingPublish = Omit<PublishFrame, "acked" | "keyEncoding"> & {
  seq: number;
  keyEncoding?: "utf8" | "base64";
};

export interface OutboxEntry {
  readonly seq: number;
  readonly frame: OutgoingPublish;
  /** Length of the encoded frame, in UTF-8 bytes. */
  readonly bytes: number;
  /** Sent on the current link and not answered yet. */
  onWire: boolean;
  /** Nacked retryably: waits for the retry timer before it is sent again. */
  held: boolean;
  /** An earlier attempt may have been written (lost in flight, or nacked KAFKA_TIMEOUT). */
  maybeWritten: boolean;
  attempts: number;
  readonly settle: {
    resolve(value: unknown): void;
    reject(error: Error): void;
  };
}

const utf8 = new TextEncoder();
export const byteLength = (text: string): number => utf8.encode(text).length;

export class Outbox {
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** Insertion order is seq order: seqs only grow. */
  readonly #entries = new Map<number, OutboxEntry>();
  #bytes = 0;
  #lastSeq = 0;

  constructor(limits: OutboxLimits = {}) {
    this.maxMessages = limits.maxMessages ?? 10_000;
    this.maxBytes = limits.maxBytes ?? 16 * 1024 * 1024;
    if (!Number.isInteger(this.maxMessages) || this.maxMessages < 1) {
      throw new RangeError(`outbox.maxMessages must be a positive integer, got ${limits.maxMessages}`);
    }
    if (!Number.isInteger(this.maxBytes) || this.maxBytes < 1) {
      throw new RangeError(`outbox.maxBytes must be a positive integer, got ${limits.maxBytes}`);
    }
  }

  /** The seq the next added publish gets. */
  get nextSeq(): number {
    return this.#lastSeq + 1;
  }

  get size(): number {
    return this.#entries.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  get inflight(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.onWire) n++;
    return n;
  }

  /** Adds the publish numbered `nextSeq`; throws OutboxFullError (and uses no seq) when it does not fit. */
  add(
    frame: OutgoingPublish,
    bytes: number,
    settle: OutboxEntry["settle"],
  ): OutboxEntry {
    if (frame.seq !== this.nextSeq) throw new Error(`outbox expected seq ${this.nextSeq}, got ${frame.seq}`);
    if (this.#entries.size + 1 > this.maxMessages || this.#bytes + bytes > this.maxBytes) {
      throw new OutboxFullError(this.#entries.size, this.#bytes, this, bytes);
    }
    const entry: OutboxEntry = {
      seq: frame.seq,
      frame,
      bytes,
      onWire: false,
      held: false,
      maybeWritten: false,
      attempts: 0,
      settle,
    };
    this.#entries.set(frame.seq, entry);
    this.#bytes += bytes;
    this.#lastSeq = frame.seq;
    return entry;
  }

  get(seq: number): OutboxEntry | undefined {
    return this.#entries.get(seq);
  }

  /** The publish was answered for good (acked, or refused): it leaves the outbox. */
  remove(seq: number): OutboxEntry | undefined {
    const e = this.#entries.get(seq);
    if (!e) return undefined;
    this.#entries.delete(seq);
    this.#bytes -= e.bytes;
    return e;
  }

  /**
   * The `acked` to send: the highest S such that every seq <= S was answered, i.e. the
   * lowest seq still held minus one, or the last seq when nothing is held.
   */
  ackedFloor(): number {
    for (const seq of this.#entries.keys()) return seq - 1;
    return this.#lastSeq;
  }

  /** Entries to send now, in seq order, so that no more than `maxInflight` are on the wire. */
  sendable(maxInflight: number): OutboxEntry[] {
    let room = maxInflight - this.inflight;
    const out: OutboxEntry[] = [];
    for (const e of this.#entries.values()) {
      if (room <= 0) break;
      if (e.onWire || e.held) continue;
      out.push(e);
      room--;
    }
    return out;
  }

  /** The link dropped: nothing is on the wire any more, and what was may have been written. */
  linkLost(): void {
    for (const e of this.#entries.values()) {
      if (e.onWire) e.maybeWritten = true;
      e.onWire = false;
      e.held = false;
    }
  }

  /** The retry timer fired: held entries may go out again. */
  release(): void {
    for (const e of this.#entries.values()) e.held = false;
  }

  /** Empties the outbox, handing back what it held (close without a full drain). */
  drain(): OutboxEntry[] {
    const all = [...this.#entries.values()];
    this.#entries.clear();
    this.#bytes = 0;
    return all;
  }
}
