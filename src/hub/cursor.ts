/**
 * One broadcast subscriber of a topic hub: where it is in each partition, and its
 * credit. That is all it costs; the records live in the hub's shared windows.
 *
 * Each partition is served by exactly one source at a time: the window while it
 * covers the cursor's position, otherwise the cursor's catch-up reader. Both move
 * the same position, so the seam between them has no gap and no duplicate. Nothing
 * on the broker side can move a position.
 */
import type { Delivery } from "../kafka/types.ts";
import type { Encoding } from "../protocol/mod.ts";
import { HubRecord, type PartitionWindow } from "./window.ts";

export interface CursorHooks {
  send(frame: string): void;
  bufferedAmount(): number;
  /** A catch-up record starts (+1) or stops (-1) waiting for credit or a drained socket. */
  onPendingChange?(delta: number): void;
}

export interface CursorOptions {
  sub: string;
  clientTopic: string;
  encoding: Encoding;
  credit: number;
  maxCredit: number;
  maxBufferedBytes: number;
  /** The "disconnect" slow-consumer policy: tell whoever drops the subscriber when it stalls. */
  stall?: { timeoutMs: number; onStalled(reason: string): void };
}

/** What the cursor needs from its hub. */
export interface CursorHub {
  window(partition: number): PartitionWindow | undefined;
  windows(): Iterable<PartitionWindow>;
  /** The cursor is behind a window: it needs (or keeps) a catch-up reader. */
  needsCatchUp(cursor: Cursor): void;
  /** The socket is backed up: pump again once it drains. */
  blocked(cursor: Cursor): void;
}

/** Records handed to the socket per step, so one subscriber cannot hold the event loop for long. */
const STEP = 256;

export class Cursor {
  /** Next offset to deliver, per partition; a partition not here starts at its window's start. */
  readonly positions = new Map<number, number>();
  #credit: number;
  readonly #subJson: string;
  #stopped = false;
  /** A catch-up record waiting for credit or a drained socket. */
  #waiting?: () => void;

  constructor(readonly opts: CursorOptions, readonly hub: CursorHub, readonly hooks: CursorHooks) {
    this.#credit = opts.credit;
    this.#subJson = JSON.stringify(opts.sub);
  }

  get credit(): number {
    return this.#credit;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  position(w: PartitionWindow): number {
    return this.positions.get(w.partition) ?? w.start;
  }

  /** Whether the windows serve every partition (no catch-up reader needed). */
  get covered(): boolean {
    for (const w of this.hub.windows()) if (!w.covers(this.position(w))) return false;
    return true;
  }

  /** Whether some window holds records this cursor has not had. */
  get behind(): boolean {
    for (const w of this.hub.windows()) if (this.position(w) < w.next) return true;
    return false;
  }

  #canSend(): boolean {
    return this.#credit > 0 && this.hooks.bufferedAmount() < this.opts.maxBufferedBytes;
  }

  grant(n: number): void {
    this.#credit = Math.min(this.opts.maxCredit, this.#credit + n);
    this.#wake();
    this.pump();
  }

  stop(): void {
    this.#stopped = true;
    this.#wake();
  }

  /** Sends what the windows hold for this cursor, as far as credit and the socket allow. */
  pump(): void {
    if (this.#stopped) return;
    let catchUp = false;
    for (const w of this.hub.windows()) {
      let pos = this.position(w);
      if (!w.covers(pos)) {
        catchUp = true;
        continue;
      }
      while (this.#credit > 0) {
        if (this.hooks.bufferedAmount() >= this.opts.maxBufferedBytes) {
          this.hub.blocked(this);
          return;
        }
        const records = w.from(pos, Math.min(this.#credit, STEP));
        if (records.length === 0) break;
        for (const r of records) this.hooks.send(r.frame(this.#subJson, this.opts.encoding));
        this.#credit -= records.length;
        pos = records[records.length - 1].offset + 1;
        this.positions.set(w.partition, pos);
      }
    }
    // Without credit it would only hold a reader, and a pool slot, idle: it asks when credit comes.
    if (catchUp && this.#credit > 0) this.hub.needsCatchUp(this);
  }

  /**
   * The catch-up reader's DeliverFn. Resolves true once the record is handled (sent,
   * or already had, or now the window's to send), false when the cursor stopped.
   */
  catchUp = async (d: Delivery): Promise<boolean> => {
    for (;;) {
      if (this.#stopped) return false;
      const w = this.hub.window(d.partition);
      const offset = Number(d.offset);
      const pos = this.positions.get(d.partition) ?? w?.start ?? 0;
      if ((w && w.covers(pos)) || offset < pos) return true; // the window serves it, or it was sent
      if (this.#canSend()) {
        this.hooks.send(new HubRecord(d, this.opts.clientTopic).frame(this.#subJson, this.opts.encoding));
        this.#credit--;
        this.positions.set(d.partition, offset + 1);
        return true;
      }
      if (this.#credit > 0) this.hub.blocked(this); // credit, but a full socket: wait for it to drain
      this.hooks.onPendingChange?.(1);
      await new Promise<void>((resolve) => (this.#waiting = resolve));
      this.hooks.onPendingChange?.(-1);
    }
  };

  /** Credit came, the socket drained, or the cursor stopped: a waiting catch-up record looks again. */
  #wake(): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.();
  }

  #stalledSince?: number;

  /**
   * The "disconnect" policy, checked by the hub now and then: a full socket, or records
   * waiting with no credit for longer than the timeout, stalls the subscriber (once).
   */
  checkStall(now: number): void {
    const stall = this.opts.stall;
    if (!stall || this.#stopped) return;
    let reason: string | undefined;
    if (this.hooks.bufferedAmount() >= this.opts.maxBufferedBytes) {
      reason = `socket send buffer passed ${this.opts.maxBufferedBytes} bytes`;
    } else if (this.#credit === 0 && this.behind) {
      this.#stalledSince ??= now;
      if (now - this.#stalledSince > stall.timeoutMs) {
        reason = `no credit for ${stall.timeoutMs} ms with messages waiting`;
      }
    } else this.#stalledSince = undefined;
    if (reason) {
      this.stop();
      stall.onStalled(reason);
    }
  }

  /** The hub's drain check: the socket has room again. */
  drained(): void {
    this.#wake();
    this.pump();
  }
}
