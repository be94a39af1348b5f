/**
 * Parses and validates one client text frame. Every failure names the field and
 * what was expected, and carries the request id when one could be read, so the
 * reply can echo it. Pure: no runtime calls.
 */
import { ErrorCode } from "./codes.ts";
import type { ClientFrame, Encoding, StartPosition, SubscribeMode } from "./frames.ts";
import { isReservedHeader } from "./namespace.ts";

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: ErrorCode; message: string; id?: string; op?: string };

const OFFSET_RE = /^(0|[1-9][0-9]{0,18})$/;
const ENCODINGS: readonly Encoding[] = ["utf8", "json", "base64"];
const KEY_ENCODINGS = ["utf8", "base64"] as const;

class FrameError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `"${v.length > 40 ? v.slice(0, 40) + "…" : v}"`;
  if (typeof v === "object") return "an object";
  return `${typeof v} ${String(v)}`;
}

function required(o: Obj, field: string): unknown {
  if (o[field] === undefined || o[field] === null) {
    throw new FrameError(ErrorCode.MISSING_FIELD, `missing field "${field}"`);
  }
  return o[field];
}

function str(o: Obj, field: string, opts: { optional?: boolean; max?: number } = {}): string | undefined {
  if (o[field] === undefined && opts.optional) return undefined;
  const v = required(o, field);
  if (typeof v !== "string" || v.length === 0) {
    throw new FrameError(
      ErrorCode.BAD_FIELD,
      `field "${field}" must be a non-empty string, got ${describe(v)}`,
    );
  }
  if (opts.max !== undefined && v.length > opts.max) {
    throw new FrameError(ErrorCode.BAD_FIELD, `field "${field}" is longer than ${opts.max} characters`);
  }
  return v;
}

function int(o: Obj, field: string, min: number, max: number, optional = false): number | undefined {
  if (o[field] === undefined && optional) return undefined;
  const v = required(o, field);
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new FrameError(
      ErrorCode.BAD_FIELD,
      `field "${field}" must be an integer from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return v;
}

function oneOf<T extends string>(o: Obj, field: string, allowed: readonly T[], fallback: T): T {
  const v = o[field];
  if (v === undefined) return fallback;
  if (typeof v !== "string" || !allowed.includes(v as T)) {
    throw new FrameError(
      ErrorCode.BAD_FIELD,
      `field "${field}" must be one of ${allowed.join(", ")}, got ${describe(v)}`,
    );
  }
  return v as T;
}

export function isOffset(v: unknown): v is string {
  return typeof v === "string" && OFFSET_RE.test(v) && BigInt(v) <= 9223372036854775807n;
}

function headers(o: Obj): Record<string, string> | undefined {
  const h = o.headers;
  if (h === undefined) return undefined;
  if (h === null || typeof h !== "object" || Array.isArray(h)) {
    throw new FrameError(
      ErrorCode.BAD_FIELD,
      `field "headers" must be an object of strings, got ${describe(h)}`,
    );
  }
  for (const [k, v] of Object.entries(h)) {
    if (typeof v !== "string") {
      throw new FrameError(ErrorCode.BAD_FIELD, `header "${k}" must be a string, got ${describe(v)}`);
    }
    // The bridge's own headers (eb-principal, eb-client-id, ...) must be believable downstream.
    if (isReservedHeader(k)) {
      throw new FrameError(
        ErrorCode.BAD_FIELD,
        `header "${describeName(k)}" is reserved: names starting with "eb-" are set by the bridge only`,
      );
    }
  }
  return h as Record<string, string>;
}

/** A header name as an error message may quote it: bounded, so a huge name is not echoed whole. */
function describeName(name: string): string {
  return name.length > 40 ? name.slice(0, 40) + "…" : name;
}

function startPosition(o: Obj): StartPosition {
  const f = o.from;
  if (f === undefined || f === "latest") return { kind: "latest" };
  if (f === "earliest") return { kind: "earliest" };
  if (f !== null && typeof f === "object" && !Array.isArray(f)) {
    const from = f as Obj;
    if (from.offsets !== undefined) {
      const offsets = from.offsets;
      if (
        offsets === null || typeof offsets !== "object" || Array.isArray(offsets) ||
        Object.keys(offsets).length === 0
      ) {
        throw new FrameError(
          ErrorCode.BAD_OFFSET,
          `"from.offsets" must map partitions to offsets, got ${describe(offsets)}`,
        );
      }
      for (const [p, off] of Object.entries(offsets as Obj)) {
        if (!/^(0|[1-9][0-9]{0,8})$/.test(p)) {
          throw new FrameError(
            ErrorCode.BAD_OFFSET,
            `"from.offsets" key must be a partition number, got "${p}"`,
          );
        }
        if (!isOffset(off)) {
          throw new FrameError(
            ErrorCode.BAD_OFFSET,
            `offset for partition ${p} must be a non-negative integer string, got ${describe(off)}`,
          );
        }
      }
      return { kind: "offsets", offsets: offsets as Record<string, string> };
    }
    if (from.timestamp !== undefined) {
      const ts = from.timestamp;
      if (typeof ts !== "number" || !Number.isInteger(ts) || ts < 0) {
        throw new FrameError(
          ErrorCode.BAD_OFFSET,
          `"from.timestamp" must be milliseconds since the epoch, got ${describe(ts)}`,
        );
      }
      return { kind: "timestamp", timestamp: ts };
    }
  }
  throw new FrameError(
    ErrorCode.BAD_OFFSET,
    `field "from" must be "earliest", "latest", {"offsets":{...}} or {"timestamp":ms}, got ${describe(f)}`,
  );
}

export interface ParseLimits {
  maxCredit: number;
}

/** The optional exactly-once fields of a publish: `seq` >= 1, `acked` < `seq`. */
function sequence(o: Obj): { seq?: number; acked?: number } {
  const seq = int(o, "seq", 1, Number.MAX_SAFE_INTEGER, true);
  const acked = int(o, "acked", 0, Number.MAX_SAFE_INTEGER, true);
  if (seq === undefined) {
    if (acked !== undefined) throw new FrameError(ErrorCode.BAD_FIELD, `field "acked" needs "seq"`);
    return {};
  }
  if (acked !== undefined && acked >= seq) {
    throw new FrameError(
      ErrorCode.BAD_FIELD,
      `field "acked" (${acked}) must be below "seq" (${seq}): a publish cannot be answered before it is sent`,
    );
  }
  return { seq, acked };
}

function parseFields(o: Obj, op: string, limits: ParseLimits): ClientFrame {
  switch (op) {
    case "hello":
      return {
        op,
        id: str(o, "id", { optional: true }),
        clientId: str(o, "clientId", { max: 200 })!,
        lastEpoch: int(o, "lastEpoch", 0, Number.MAX_SAFE_INTEGER, true),
        instance: str(o, "instance", { optional: true, max: 100 }),
      };
    case "publish": {
      const encoding = oneOf(o, "encoding", ENCODINGS, "utf8");
      const value = o.value;
      if (value === undefined) throw new FrameError(ErrorCode.MISSING_FIELD, `missing field "value"`);
      if (encoding !== "json" && typeof value !== "string") {
        throw new FrameError(
          ErrorCode.BAD_FIELD,
          `field "value" must be a string with encoding ${encoding}, got ${describe(value)}`,
        );
      }
      if (encoding === "base64" && !isBase64(value as string)) {
        throw new FrameError(ErrorCode.BAD_FIELD, `field "value" is not valid base64`);
      }
      const keyEncoding = oneOf(o, "keyEncoding", KEY_ENCODINGS, "utf8");
      const key = o.key === undefined || o.key === null ? undefined : o.key;
      if (key !== undefined && typeof key !== "string") {
        throw new FrameError(ErrorCode.BAD_FIELD, `field "key" must be a string, got ${describe(key)}`);
      }
      if (key !== undefined && keyEncoding === "base64" && !isBase64(key)) {
        throw new FrameError(ErrorCode.BAD_FIELD, `field "key" is not valid base64`);
      }
      return {
        op,
        id: str(o, "id", { max: 200 })!,
        topic: str(o, "topic", { max: 249 })!,
        value,
        encoding,
        key,
        keyEncoding,
        headers: headers(o),
        partition: int(o, "partition", 0, 1_000_000, true),
        ...sequence(o),
      };
    }
    case "subscribe": {
      const mode = oneOf<SubscribeMode>(o, "mode", ["group", "broadcast"], "broadcast");
      const group = str(o, "group", { optional: true, max: 200 });
      if (mode === "group" && group === undefined) {
        throw new FrameError(
          ErrorCode.MISSING_FIELD,
          `missing field "group" (required when mode is "group")`,
        );
      }
      return {
        op,
        id: str(o, "id", { max: 200 })!,
        sub: str(o, "sub", { optional: true, max: 200 }) ?? str(o, "id")!,
        topic: str(o, "topic", { max: 249 })!,
        mode,
        group,
        from: startPosition(o),
        credit: int(o, "credit", 0, limits.maxCredit, true) ?? 0,
        encoding: oneOf(o, "encoding", ENCODINGS, "utf8"),
      };
    }
    case "credit":
      return {
        op,
        id: str(o, "id", { optional: true }),
        sub: str(o, "sub")!,
        n: int(o, "n", 1, limits.maxCredit)!,
      };
    case "commit": {
      const offset = required(o, "offset");
      if (!isOffset(offset)) {
        throw new FrameError(
          ErrorCode.BAD_OFFSET,
          `field "offset" must be a non-negative integer string, got ${describe(offset)}`,
        );
      }
      return {
        op,
        id: str(o, "id")!,
        sub: str(o, "sub")!,
        partition: int(o, "partition", 0, 1_000_000)!,
        offset,
      };
    }
    case "unsubscribe":
      return { op, id: str(o, "id")!, sub: str(o, "sub")! };
    case "ping":
      return { op, id: str(o, "id", { optional: true }) };
    case "auth":
      if (typeof o.token !== "string" || o.token.length === 0 || o.token.length > 16_384) {
        // Never echo the token: the message may be logged.
        throw new FrameError(
          o.token === undefined ? ErrorCode.MISSING_FIELD : ErrorCode.BAD_FIELD,
          o.token === undefined
            ? `missing field "token"`
            : `field "token" must be a string of 1 to 16384 characters`,
        );
      }
      return { op, id: str(o, "id", { optional: true, max: 200 }), token: o.token };
    default:
      throw new FrameError(
        ErrorCode.UNKNOWN_OP,
        `unknown op "${op}"; expected one of hello, publish, subscribe, credit, commit, unsubscribe, ping, auth`,
      );
  }
}

const BASE64_RE = /^[A-Za-z0-9+/]*={0,2}$/;
function isBase64(s: string): boolean {
  return s.length % 4 === 0 && BASE64_RE.test(s);
}

/** Parses one text frame. Never throws. */
export function parseClientFrame(text: string, limits: ParseLimits): ParseResult {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return {
      ok: false,
      code: ErrorCode.BAD_JSON,
      message: `frame is not valid JSON: ${(e as Error).message}`,
    };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return {
      ok: false,
      code: ErrorCode.BAD_FRAME,
      message: `frame must be a JSON object, got ${describe(raw)}`,
    };
  }
  const o = raw as Obj;
  const id = typeof o.id === "string" ? o.id : undefined;
  if (typeof o.op !== "string") {
    return o.op === undefined
      ? { ok: false, code: ErrorCode.MISSING_FIELD, message: `missing field "op"`, id }
      : {
        ok: false,
        code: ErrorCode.BAD_FIELD,
        message: `field "op" must be a string, got ${describe(o.op)}`,
        id,
      };
  }
  try {
    return { ok: true, frame: parseFields(o, o.op, limits) };
  } catch (e) {
    if (e instanceof FrameError) return { ok: false, code: e.code, message: e.message, id, op: o.op };
    throw e;
  }
}
