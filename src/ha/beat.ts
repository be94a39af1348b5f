/**
 * The heartbeat datagram: what a node says about itself, signed, and the checks a receiver runs
 * before it believes a word of it. Nothing here touches the network, so every rule is unit-tested.
 *
 * Wire form (one UDP datagram, at most MAX_BEAT_BYTES): the JSON body, a newline, then the
 * HMAC-SHA256 of the body's bytes under the pair's shared key, in base64url. JSON.stringify never
 * emits a raw newline, so the split is unambiguous. The key is required (ha.heartbeat.keyFile);
 * "-" in place of the HMAC is how versions that allowed a pair without a key sent their beats, and
 * such a beat is still recognised, to be refused as unsigned.
 *
 * Replays: each process start takes a new incarnation, higher than every earlier one of that node
 * (persisted in its dataDir, incarnation.ts), and numbers its beats 1, 2, 3...; a receiver accepts
 * a beat only if (incarnation, seq) is above the last pair it accepted from that node. A random
 * boot id (the previous design) cannot be ordered, so a receiver that had forgotten a peer's boots
 * could take a recorded beat of an old one for the current one and then refuse every genuine beat.
 * Incarnations cannot go back: an old one is displaced as soon as a higher one is heard, and it
 * never blocks a higher one. Wall clocks are never compared.
 */
import { Buffer } from "node:buffer";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { NodeView, Role } from "./election.ts";

/** 3: `incarnation` (ordered, persisted) replaced v2's random `boot`. */
export const BEAT_VERSION = 3;
/** Far above a real beat (~300 bytes), far below what a datagram may carry. */
export const MAX_BEAT_BYTES = 2048;
const ROLES: readonly Role[] = ["init", "backup", "activating", "live", "draining", "fenced", "stopped"];
const ID_RE = /^[A-Za-z0-9._-]{1,100}$/;
/** Printable ASCII, no spaces or quotes: it ends up in close reasons, logs and error frames. */
const URL_RE = /^wss?:\/\/[!#-~]{1,500}$/;
const FIELDS = new Set([
  "v",
  "pair",
  "incarnation",
  "seq",
  "node",
  "priority",
  "role",
  "epoch",
  "kafkaUp",
  "readyForMs",
  "url",
  "paused",
]);

export interface Beat extends NodeView {
  v: typeof BEAT_VERSION;
  pair: string;
  /** Higher at every process start of the node (incarnation.ts); its sequence starts again at 1. */
  incarnation: number;
  /** Counts this incarnation's beats from 1; strictly increasing. */
  seq: number;
  /** "paused": stopped gracefully without failover (failoverOnShutdown false): backups wait for it. */
  paused?: boolean;
}

export type BeatRejection =
  | "too_large"
  | "unsigned"
  | "bad_signature"
  | "not_json"
  | "bad_field"
  | "other_pair"
  | "own_node"
  | "replayed"
  | "not_a_peer";

export type Decoded = { ok: true; beat: Beat } | { ok: false; reason: BeatRejection; detail: string };

function mac(key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac("sha256", key).update(body).digest();
}

export function encodeBeat(beat: Beat, key: Uint8Array): Uint8Array {
  const body = Buffer.from(JSON.stringify(beat), "utf8");
  return Buffer.concat([body, Buffer.from("\n" + mac(key, body).toString("base64url"), "ascii")]);
}

/** Checks size and signature, then every field (types, ranges, lengths); never throws. */
export function decodeBeat(data: Uint8Array, key: Uint8Array, pair: string): Decoded {
  const fail = (reason: BeatRejection, detail: string): Decoded => ({ ok: false, reason, detail });
  if (data.length > MAX_BEAT_BYTES) return fail("too_large", `${data.length} bytes`);
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  const nl = buf.lastIndexOf(0x0a);
  if (nl < 0) return fail("unsigned", "no signature line");
  const body = buf.subarray(0, nl);
  const tail = buf.subarray(nl + 1).toString("latin1");
  // From a node of a version that allowed running without a key (or from anyone posing as one).
  if (tail === "-") return fail("unsigned", "the sender has no ha.heartbeat.keyFile");
  const expected = mac(key, body);
  const given = /^[A-Za-z0-9_-]{43}$/.test(tail) ? Buffer.from(tail, "base64url") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return fail("bad_signature", "the HMAC does not match (another key, or altered)");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    return fail("not_json", "the body is not UTF-8 JSON");
  }
  const problem = validate(raw);
  if (problem) return fail("bad_field", problem);
  const beat = raw as Beat;
  if (beat.pair !== pair) return fail("other_pair", `pair "${beat.pair}"`);
  return { ok: true, beat };
}

const isInt = (v: unknown, min: number, max: number) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

/** The first problem with a parsed body, or undefined when every field is as a beat's must be. */
export function validate(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return "not an object";
  const o = raw as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.has(k)) return `unknown field "${k.slice(0, 40)}"`;
  if (o.v !== BEAT_VERSION) return `v must be ${BEAT_VERSION}`;
  if (typeof o.pair !== "string" || !ID_RE.test(o.pair)) return "pair: 1-100 of [A-Za-z0-9._-]";
  if (typeof o.node !== "string" || !ID_RE.test(o.node)) return "node: 1-100 of [A-Za-z0-9._-]";
  if (!isInt(o.incarnation, 1, Number.MAX_SAFE_INTEGER)) return "incarnation: an integer from 1";
  if (!isInt(o.seq, 1, Number.MAX_SAFE_INTEGER)) return "seq: an integer from 1";
  if (!isInt(o.priority, 0, 1000)) return "priority: an integer 0-1000";
  if (typeof o.role !== "string" || !ROLES.includes(o.role as Role)) return "role: a known role";
  if (!isInt(o.epoch, 0, Number.MAX_SAFE_INTEGER)) return "epoch: an integer from 0";
  if (typeof o.kafkaUp !== "boolean") return "kafkaUp: a boolean";
  if (typeof o.readyForMs !== "number" || !Number.isFinite(o.readyForMs) || o.readyForMs < 0) {
    return "readyForMs: a number from 0";
  }
  if (o.url !== undefined && (typeof o.url !== "string" || !URL_RE.test(o.url))) {
    return "url: ws:// or wss://, printable ASCII, at most 506 characters";
  }
  if (o.paused !== undefined && typeof o.paused !== "boolean") return "paused: a boolean";
  return undefined;
}

export type Freshness =
  | { fresh: true; newIncarnation: boolean }
  | { fresh: false; detail: string };

/**
 * Per peer node: the highest incarnation heard and the last sequence accepted in it. A beat of a
 * lower incarnation, or one not above the last sequence, is a replay (or reordered, as stale).
 * `known` seeds it with the incarnations this node remembered across its own restart: their
 * sequences were not kept, so the first beat of a remembered incarnation is taken at any sequence.
 */
export class BeatFreshness {
  readonly #current = new Map<string, { incarnation: number; seq: number }>();

  constructor(known: Record<string, number> = {}, readonly maxNodes = 64) {
    for (const [node, incarnation] of Object.entries(known)) this.#current.set(node, { incarnation, seq: 0 });
  }

  accept(node: string, incarnation: number, seq: number): Freshness {
    const cur = this.#current.get(node);
    if (!cur) {
      // A pair has a handful of nodes; past the bound, a newcomer is not believed.
      if (this.#current.size >= this.maxNodes) return { fresh: false, detail: `over ${this.maxNodes} nodes` };
      this.#current.set(node, { incarnation, seq });
      return { fresh: true, newIncarnation: true };
    }
    if (incarnation > cur.incarnation) {
      this.#current.set(node, { incarnation, seq });
      return { fresh: true, newIncarnation: true };
    }
    if (incarnation === cur.incarnation && seq > cur.seq) {
      cur.seq = seq;
      return { fresh: true, newIncarnation: false };
    }
    return {
      fresh: false,
      detail: incarnation < cur.incarnation
        ? `incarnation ${incarnation}, below ${cur.incarnation} already heard`
        : `incarnation ${incarnation} seq ${seq}, not above seq ${cur.seq}`,
    };
  }
}
