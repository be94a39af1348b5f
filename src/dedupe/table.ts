/**
 * What the pair knows of each exactly-once client: which of its sequence numbers are
 * written, and where. Pure: no Kafka, no clock of its own (the caller passes `now`).
 *
 * Per client it keeps a window: `floor`, below which the client has every answer and
 * resends nothing (it says so with `acked`), and the position of every seq written above
 * the floor. A seq above the floor that is not in the window was never written. The
 * window is bounded per client: the positions recorded longest ago go first (not the lowest
 * seqs, so a late answer for an old seq is kept), and a seq at or below the highest one
 * dropped can no longer be told apart from one never written. Clients
 * clients are forgotten after `clientTtlMs` without a publish, or the least recently
 * seen first beyond `maxClients`.
 */

export interface WrittenAt {
  topic: string;
  partition: number;
  offset: number;
  /** The HA epoch of the node that wrote it: the ack of a resend repeats it. */
  epoch: number;
}

export interface ClientWindow {
  floor: number;
  /** The highest seq written (0: none). */
  high: number;
  written: Map<number, WrittenAt>;
}

export type Lookup =
  /** Never written: write it. */
  | { kind: "new" }
  /** Written before: answer with this position, write nothing. */
  | { kind: "written"; at: WrittenAt }
  /**
   * Outside what the table still knows (the seq is at or below the floor, or the client was
   * forgotten): whether it was written cannot be told. The bridge writes it (at-least-once).
   */
  | { kind: "unverifiable"; reason: "below_window" | "forgotten" };

export interface DedupeLimits {
  maxClients: number;
  windowPerClient: number;
  clientTtlMs: number;
}

interface ClientState extends ClientWindow {
  lastSeen: number;
  /** The highest seq whose position the bound dropped (0: none). */
  evicted: number;
  /** HA: the dedupe log's deltas for this client not retired yet, with the highest seq in each. */
  deltas: Map<string, number>;
}

export class DedupeTable {
  /** Insertion order is recency order: a touched client moves to the end. */
  readonly #clients = new Map<string, ClientState>();

  constructor(readonly limits: DedupeLimits) {}

  get clients(): number {
    return this.#clients.size;
  }

  /** Positions held, over all clients (for the memory metric). */
  get entries(): number {
    let n = 0;
    for (const c of this.#clients.values()) n += c.written.size;
    return n;
  }

  window(clientId: string): ClientWindow | undefined {
    return this.#clients.get(clientId);
  }

  /**
   * What to do with publish `seq` of `clientId`. `acked` (what the client says it has
   * answers for) also moves the floor up first, which frees the positions below it.
   */
  lookup(clientId: string, seq: number, acked: number | undefined, now: number): Lookup {
    let c = this.#touch(clientId, now, false);
    if (!c) {
      // Unknown: what is below this seq cannot be told from here on (the floor says so).
      c = this.#touch(clientId, now, true)!;
      this.#raiseFloor(c, Math.max(acked ?? 0, seq - 1));
      // A client's first publish is seq 1 with nothing acked; anything else means it had a
      // history here that was forgotten (or a plain bridge restarted).
      return seq === 1 && !acked ? { kind: "new" } : { kind: "unverifiable", reason: "forgotten" };
    }
    if (acked !== undefined) this.#raiseFloor(c, acked);
    const at = c.written.get(seq);
    if (at) return { kind: "written", at };
    if (seq <= c.floor || seq <= c.evicted) return { kind: "unverifiable", reason: "below_window" };
    return { kind: "new" };
  }

  /** Kafka confirmed the record of `seq`. */
  written(clientId: string, seq: number, at: WrittenAt, now: number): void {
    const c = this.#touch(clientId, now, true)!;
    if (seq <= c.floor) return;
    c.written.set(seq, at);
    if (seq > c.high) c.high = seq;
    this.#bound(c);
  }

  /**
   * Folds in a window read back from Kafka (another node wrote it, or this one did).
   * Monotonic: floors and highs only rise, and a position once known stays, so applying
   * an older or repeated record changes nothing.
   */
  merge(clientId: string, w: ClientWindow, now: number): void {
    const c = this.#touch(clientId, now, true)!;
    this.#raiseFloor(c, w.floor);
    for (const [seq, at] of w.written) {
      if (seq > c.floor && !c.written.has(seq)) c.written.set(seq, at);
    }
    if (w.high > c.high) c.high = w.high;
    this.#bound(c);
  }

  /** A delta of the dedupe log holds this client's positions up to `top`. */
  deltaWritten(clientId: string, key: string, top: number, now: number): void {
    this.#touch(clientId, now, true)!.deltas.set(key, top);
  }

  /** A delta was retired (its tombstone was read back). */
  deltaRetired(clientId: string, key: string): void {
    this.#clients.get(clientId)?.deltas.delete(key);
  }

  /** The client's deltas wholly at or below its floor, forgotten here: the caller retires them. */
  takeRetirable(clientId: string): string[] {
    const c = this.#clients.get(clientId);
    if (!c) return [];
    const due: string[] = [];
    for (const [key, top] of c.deltas) {
      if (top > c.floor) continue;
      due.push(key);
      c.deltas.delete(key);
    }
    return due;
  }

  /** Forgets clients idle past the TTL; returns how many. */
  expire(now: number): number {
    let n = 0;
    for (const [id, c] of this.#clients) {
      // No early stop: windows read back from the log carry their own (older) times, so the
      // order is only roughly by recency. Once a minute over every client is cheap.
      if (now - c.lastSeen < this.limits.clientTtlMs) continue;
      this.#clients.delete(id);
      n++;
    }
    return n;
  }

  #touch(clientId: string, now: number, create: boolean): ClientState | undefined {
    let c = this.#clients.get(clientId);
    if (c) {
      if (now - c.lastSeen >= this.limits.clientTtlMs) {
        this.#clients.delete(clientId); // expired: as if forgotten already
        c = undefined;
      } else {
        this.#clients.delete(clientId); // move to the recent end
        c.lastSeen = Math.max(c.lastSeen, now);
        this.#clients.set(clientId, c);
        return c;
      }
    }
    if (!create) return undefined;
    c = { floor: 0, high: 0, written: new Map(), lastSeen: now, evicted: 0, deltas: new Map() };
    this.#clients.set(clientId, c);
    while (this.#clients.size > this.limits.maxClients) {
      this.#clients.delete(this.#clients.keys().next().value!);
    }
    return c;
  }

  #raiseFloor(c: ClientState, floor: number): void {
    if (floor <= c.floor) return;
    c.floor = floor;
    for (const seq of c.written.keys()) if (seq <= floor) c.written.delete(seq);
  }

  /** Over the per-client bound: the positions recorded longest ago go (Map order is recording order). */
  #bound(c: ClientState): void {
    let excess = c.written.size - this.limits.windowPerClient;
    for (const seq of c.written.keys()) {
      if (excess-- <= 0) break;
      c.written.delete(seq);
      if (seq > c.evicted) c.evicted = seq;
    }
  }
}
