/**
 * Frame shapes of protocol v1: one JSON object per WebSocket text frame, with an
 * `op` field. Offsets are decimal strings because int64 does not fit a JS number.
 * Pure types: no runtime imports, so the browser SDK shares this file.
 */
import type { ErrorCode } from "./codes.ts";

/** How `value` (and `key`) are written on the wire. */
export type Encoding = "utf8" | "json" | "base64";

export type StartPosition =
  | { kind: "earliest" }
  | { kind: "latest" }
  | { kind: "offsets"; offsets: Record<string, string> } // partition -> offset
  | { kind: "timestamp"; timestamp: number }; // ms since the epoch

export type SubscribeMode = "group" | "broadcast";

// ---- client -> bridge ----

export interface HelloFrame {
  op: "hello";
  id?: string;
  clientId: string;
  lastEpoch?: number;
  /**
   * Names this run of the client (a random id per process or page load): exactly-once
   * `seq`s count from 1 per (clientId, instance), so a fixed clientId can restart safely.
   * Publishing with `seq` needs it.
   */
  instance?: string;
}

export interface PublishFrame {
  op: "publish";
  id: string;
  topic: string;
  value: unknown; // string for utf8/base64, any JSON value for json
  encoding: Encoding;
  key?: string;
  keyEncoding: "utf8" | "base64";
  headers?: Record<string, string>;
  partition?: number;
  /**
   * Exactly-once publishing (needs a `hello` first): the client's sequence number for
   * this record, 1, 2, 3... per clientId. A resend with the same `seq` is answered with
   * the first write's position (`duplicate: true`) instead of being written again.
   */
  seq?: number;
  /** With `seq`: every seq up to this one was answered, and the client will not resend it. */
  acked?: number;
}

export interface SubscribeFrame {
  op: "subscribe";
  id: string;
  sub: string;
  topic: string;
  mode: SubscribeMode;
  group?: string;
  from: StartPosition;
  credit: number;
  encoding: Encoding;
}

export interface CreditFrame {
  op: "credit";
  id?: string;
  sub: string;
  n: number;
}

export interface CommitFrame {
  op: "commit";
  id: string;
  sub: string;
  partition: number;
  offset: string; // offset of the last message processed; the bridge commits offset + 1
}

export interface UnsubscribeFrame {
  op: "unsubscribe";
  id: string;
  sub: string;
}

/**
 * Presents a token (a JWT or an API key): as the first frame when the handshake carried
 * none, or later to refresh a token before it expires (same principal only).
 */
export interface AuthFrame {
  op: "auth";
  id?: string;
  token: string;
}

export interface PingFrame {
  op: "ping";
  id?: string;
}

export type ClientFrame =
  | HelloFrame
  | PublishFrame
  | SubscribeFrame
  | CreditFrame
  | CommitFrame
  | UnsubscribeFrame
  | PingFrame
  | AuthFrame;

// ---- bridge -> client ----

export interface WelcomeFrame {
  op: "welcome";
  v: number;
  node: string;
  role: string;
  epoch: number;
  session: string;
  /** Who the connection is authenticated as; kind "anonymous" when it presented no token. */
  principal?: { id: string; kind: "anonymous" | "jwt" | "api-key"; expiresAt?: number };
  limits: {
    maxFrameBytes: number;
    maxInflightPublishes: number;
    maxSubscriptions: number;
    maxCredit: number;
  };
}

export interface HelloOkFrame {
  op: "hello_ok";
  id?: string;
  clientId: string;
  epoch: number;
}

export interface AckFrame {
  op: "ack";
  id: string;
  topic: string;
  partition: number;
  offset: string;
  epoch: number;
  /** The publish's `seq` was written before (a resend): this is that write's position. */
  duplicate?: boolean;
}

export interface NackFrame {
  op: "nack";
  id: string;
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export interface SubscribedFrame {
  op: "subscribed";
  id: string;
  sub: string;
  topic: string;
  mode: SubscribeMode;
  group?: string;
  /**
   * Broadcast: the offset each partition starts from (partition -> offset), resolved from
   * `from`. A client resumes with `from.offsets` = this, moved past what it received.
   */
  start?: Record<string, string>;
}

export interface MessageFrame {
  op: "message";
  sub: string;
  topic: string;
  partition: number;
  offset: string;
  timestamp: string; // ms since the epoch, as Kafka reports it
  key: string | null;
  keyEncoding: "utf8" | "base64";
  value: unknown;
  encoding: Encoding;
  headers: Record<string, string>;
}

export interface CommittedFrame {
  op: "committed";
  id: string;
  sub: string;
  partition: number;
  offset: string;
}

export interface UnsubscribedFrame {
  op: "unsubscribed";
  /** The unsubscribe request answered; absent when the bridge ended the subscription itself. */
  id?: string;
  sub: string;
  reason?: string;
}

/** Broadcast: records from `from` up to `to` (exclusive) were deleted by retention before delivery. */
export interface SkippedFrame {
  op: "skipped";
  sub: string;
  topic: string;
  partition: number;
  from: string;
  to: string;
  reason: string;
}

export interface PongFrame {
  op: "pong";
  id?: string;
}

/** The answer to an `auth` frame on an admitted connection. */
export interface AuthOkFrame {
  op: "auth_ok";
  id?: string;
  principal: string;
  kind: "jwt" | "api-key";
  /** When the new token expires (ms since the epoch), if it does. */
  expiresAt?: number;
}

/** The token runs out soon: send a fresh one in an `auth` frame, or the connection closes with 4402. */
export interface AuthExpiringFrame {
  op: "auth_expiring";
  expiresAt: number;
  inMs: number;
}

export interface ErrorFrame {
  op: "error";
  id?: string;
  sub?: string;
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

export type ServerFrame =
  | WelcomeFrame
  | HelloOkFrame
  | AckFrame
  | NackFrame
  | SubscribedFrame
  | MessageFrame
  | CommittedFrame
  | UnsubscribedFrame
  | SkippedFrame
  | PongFrame
  | AuthOkFrame
  | AuthExpiringFrame
  | ErrorFrame;
