/**
 * The dedupe log's records (a compacted Kafka topic):
 *
 *   key "d/<clientId>/<id>"  value: a delta: the positions one transaction wrote for the
 *                            client, with its floor and high (JSON, below). Null value (a
 *                            tombstone): every position in that delta is below the client's
 *                            floor now, so compaction may drop it.
 *   key "b/<node>"           value: {"barrier":"<nonce>"}, written by a node that just took
 *                            over, to know when it has read everything committed before it
 *   key "l/<node>"           value: {"live":epoch,"seq":n}, written (heartbeat mode) by a live
 *                            that hears no peer, so that a peer cut off from it can see in
 *                            Kafka that a live still serves (src/ha/live_marks.ts)
 *
 * A delta is {"v":1,"f":floor,"h":high,"w":[[topic,partition,epoch,seq,offset,seq,offset,...],...]}:
 * positions grouped by partition and epoch (about 10 bytes a position).
 *
 * Why deltas and not one record per client: a client's unacknowledged positions span several
 * transactions; rewriting them all in each one cost more bytes than the records themselves.
 * Each position is written once, and each delta retired once; what compaction keeps is the
 * deltas that still hold positions a client may resend.
 */
import type { ClientWindow, WrittenAt } from "./table.ts";

const DELTA = "d/";
const BARRIER = "b/";
const LIVE_MARK = "l/";
/** A tombstone sent with a transaction's first request, to add the log to it early; it means nothing. */
export const PLACEHOLDER_KEY = "p/";
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function deltaKey(clientId: string, id: string): string {
  return `${DELTA}${clientId}/${id}`;
}

export function barrierKey(node: string): string {
  return BARRIER + node;
}

export function liveMarkKey(node: string): string {
  return LIVE_MARK + node;
}

export function encodeLiveMark(epoch: number, seq: number): Uint8Array {
  return encoder.encode(JSON.stringify({ live: epoch, seq }));
}

export function encodeWindow(w: ClientWindow): Uint8Array {
  const groups = new Map<string, (string | number)[]>();
  for (const [seq, at] of w.written) {
    const id = `${at.topic}\u0000${at.partition}\u0000${at.epoch}`;
    let g = groups.get(id);
    if (!g) groups.set(id, g = [at.topic, at.partition, at.epoch]);
    g.push(seq, at.offset);
  }
  return encoder.encode(JSON.stringify({ v: 1, f: w.floor, h: w.high, w: [...groups.values()] }));
}

export function encodeBarrier(nonce: string): Uint8Array {
  return encoder.encode(JSON.stringify({ barrier: nonce }));
}

export type LogRecord =
  | { kind: "delta"; clientId: string; key: string; window: ClientWindow }
  /** A delta's tombstone. */
  | { kind: "retired"; clientId: string; key: string }
  | { kind: "barrier"; node: string; nonce: string }
  | { kind: "placeholder" }
  | { kind: "live"; node: string; epoch: number; seq: number }
  /** A record this version cannot read (another version wrote it, or it is damaged). */
  | { kind: "unreadable"; why: string };

const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

export function decodeRecord(key: Uint8Array | null, value: Uint8Array | null): LogRecord {
  let k: string, body: unknown;
  try {
    k = key ? decoder.decode(key) : "";
    body = value ? JSON.parse(decoder.decode(value)) : null;
  } catch (e) {
    return { kind: "unreadable", why: `not UTF-8 JSON: ${(e as Error).message}` };
  }
  if (k === PLACEHOLDER_KEY) return { kind: "placeholder" };
  if (k.startsWith(BARRIER)) {
    const nonce = (body as { barrier?: unknown } | null)?.barrier;
    if (typeof nonce !== "string") return { kind: "unreadable", why: "a barrier without a nonce" };
    return { kind: "barrier", node: k.slice(BARRIER.length), nonce };
  }
  if (k.startsWith(LIVE_MARK)) {
    const o = body as { live?: unknown; seq?: unknown } | null;
    if (!o || !isCount(o.live) || !isCount(o.seq)) {
      return { kind: "unreadable", why: "a malformed live mark" };
    }
    return { kind: "live", node: k.slice(LIVE_MARK.length), epoch: o.live, seq: o.seq };
  }
  const slash = k.lastIndexOf("/");
  if (!k.startsWith(DELTA) || slash < DELTA.length) {
    return { kind: "unreadable", why: `unknown key "${k.slice(0, 40)}"` };
  }
  const clientId = k.slice(DELTA.length, slash);
  if (value === null) return { kind: "retired", clientId, key: k };
  const o = body as { v?: unknown; f?: unknown; h?: unknown; w?: unknown } | null;
  if (!o || o.v !== 1 || !isCount(o.f) || !isCount(o.h) || !Array.isArray(o.w)) {
    return { kind: "unreadable", why: "not a version 1 window" };
  }
  const written = new Map<number, WrittenAt>();
  for (const g of o.w as unknown[]) {
    if (!Array.isArray(g) || g.length < 3 || g.length % 2 === 0) {
      return { kind: "unreadable", why: "a malformed position group" };
    }
    const [topic, partition, epoch] = g;
    if (typeof topic !== "string" || !isCount(partition) || !isCount(epoch)) {
      return { kind: "unreadable", why: "a malformed position group" };
    }
    for (let i = 3; i < g.length; i += 2) {
      const seq = g[i], offset = g[i + 1];
      if (!isCount(seq) || !isCount(offset)) return { kind: "unreadable", why: "a malformed position" };
      written.set(seq, { topic, partition, offset, epoch });
    }
  }
  return { kind: "delta", clientId, key: k, window: { floor: o.f, high: o.h, written } };
}
