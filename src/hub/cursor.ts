/**
 * One broadcast subscriber of a topic hub: where it is in each partition, and its
 * credit. That is all it costs; the records live in the hub's shared windows.
 *
 * Each partition is served by exactly one source at a time: the window while it
 * covers the cursor's position, otherwise the cursor's catch-up reader. Both move
 * the same position, so the seam between them has no gap and no duplicate. Nothing
 * on the broker side can move a position.
 */
import type { Encoding } from "../protocol/mod.ts";
import type { HubRecord, PartitionWindow } from "./window.ts";

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

/** Records looked up in a window at a time. */
const STEP = 256;
/** How long a lone cursor keeps its catch-up reader waiting for credit before it lets go. */
const CATCH_UP_WAIT_MS = 5_000;

/** What a catch-up reader says with each record. */
export interface CatchUpCall {
  /** Whether the cursor still reads from this reader (a replaced reader's records are not its to send). */
  current(): boolean;
  /** The reader's position on the record's partition before this record. */
  from: number;
  /** The offset after this record's batch, control records included (on the batch's last record). */
  batchNext?: number;
  /** Other cursors read from this reader too: never make them wait. */
  shared: boolean;
}

export class Cursor {
  /** Next offset to deliver, per partition; a partition not here starts at its window's start. */
  readonly positions = new Map<number, number>();
  #credit: number;
  readonly #subJson: string;
  #stopped = false;
  /** Nothing is sent before the subscriber was told it is subscribed. */
  #begun = false;
  /** A catch-up record waiting for credit or a drained socket. */
  #waiting?: () => void;
  #waitTurn = 0;
  /** A catch-up record came that this cursor could not take (no credit, full socket). */
  #heldBack = false;

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

  /** Whether records wait for this cursor: in a window, or from Kafka (a catch-up record it could not take). */
  get behind(): boolean {
    if (this.#heldBack) return true;
    for (const w of this.hub.windows()) if (w.from(this.position(w), 1).length > 0) return true;
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

  /** Starts delivery, once the subscriber has its "subscribed". */
  begin(): void {
    this.#begun = true;
    this.pump();
  }

  /** Sends what the windows hold for this cursor, as far as credit and the socket allow. */
  pump(): void {
    if (this.#stopped || !this.#begun) return;
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
   * One record from a catch-up reader. "handled": sent, or not this reader's to send (the window
   * covers it, it was sent already, the cursor moved to another reader); "passed": the reader is
   * beyond this cursor's place and cannot serve it (a new reader must); "detach": the cursor cannot
   * take it now (no credit, full socket) and lets go of the reader, asking again when it can.
   */
  catchUp = async (record: HubRecord, call: CatchUpCall): Promise<"handled" | "passed" | "detach"> => {
    const deadline = performance.now() + CATCH_UP_WAIT_MS;
    const partition = record.delivery.partition;
    for (;;) {
      if (this.#stopped || !call.current()) return "handled";
      const w = this.hub.window(partition);
      // A partition the tail has not seen yet: its window will start at 0 and serve it all.
      if (!w) return "handled";
      const pos = this.position(w);
      if (w.covers(pos) || record.offset < pos) return "handled";
      if (call.from > pos) return "passed";
      if (this.#canSend()) {
        this.hooks.send(record.frame(this.#subJson, this.opts.encoding));
        this.#credit--;
        this.#heldBack = false;
        // Past the record, and past the transaction markers that close its batch.
        this.positions.set(partition, Math.max(record.offset + 1, call.batchNext ?? 0));
        return "handled";
      }
      this.#heldBack = true;
      // Waiting would hold back the other cursors of a shared reader, or a pool slot for long.
      if (call.shared) return "detach";
      const left = deadline - performance.now();
      if (left <= 0) return "detach";
      if (this.#credit > 0) this.hub.blocked(this); // credit, but a full socket: wait for it to drain
      // One wait at a time: a newer call (kafkajs re-delivering after a rejoin) takes over, and the
      // older one gives its record up (the newer run delivers it again).
      const turn = ++this.#waitTurn;
      this.#wake();
      this.hooks.onPendingChange?.(1);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#waiting = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
      this.hooks.onPendingChange?.(-1);
      if (turn !== this.#waitTurn) return "handled";
      this.#waiting = undefined;
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
