/**
 * Converts payloads between their wire encoding and bytes. Uses only web
 * standards (TextEncoder, atob/btoa), so it runs in browsers too.
 */
import type { Encoding, MessageFrame } from "./frames.ts";

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export function base64ToBytes(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function bytesToBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Wire value -> bytes for Kafka. `value` was validated by parseClientFrame. */
export function encodePayload(value: unknown, encoding: Encoding): Uint8Array {
  switch (encoding) {
    case "utf8":
      return utf8.encode(value as string);
    case "json":
      return utf8.encode(JSON.stringify(value));
    case "base64":
      return base64ToBytes(value as string);
  }
}

/**
 * Kafka bytes -> wire value in the subscriber's chosen encoding. Bytes that are
 * not what the encoding promises (invalid UTF-8, invalid JSON) fall back to
 * base64, and the returned encoding says so: nothing is silently mangled.
 */
export function decodePayload(bytes: Uint8Array, encoding: Encoding): { value: unknown; encoding: Encoding } {
  if (encoding === "base64") return { value: bytesToBase64(bytes), encoding };
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    return { value: bytesToBase64(bytes), encoding: "base64" };
  }
  if (encoding === "utf8") return { value: text, encoding };
  try {
    return { value: JSON.parse(text), encoding };
  } catch {
    return { value: text, encoding: "utf8" };
  }
}

export function decodeKey(bytes: Uint8Array | null): { key: string | null; keyEncoding: "utf8" | "base64" } {
  if (bytes === null) return { key: null, keyEncoding: "utf8" };
  try {
    return { key: utf8Decoder.decode(bytes), keyEncoding: "utf8" };
  } catch {
    return { key: bytesToBase64(bytes), keyEncoding: "base64" };
  }
}

/** What a `message` frame carries of a Kafka record. */
export interface WireRecord {
  partition: number;
  offset: string;
  timestamp: string;
  key: Uint8Array | null;
  value: Uint8Array | null;
  headers: Record<string, string>;
}

/** A Kafka record as the body of a `message` frame (all but `op` and `sub`), in the subscriber's encoding. */
export function messageBody(
  clientTopic: string,
  r: WireRecord,
  encoding: Encoding,
): Omit<MessageFrame, "op" | "sub"> {
  const value = r.value ? decodePayload(r.value, encoding) : { value: null, encoding };
  return {
    topic: clientTopic,
    partition: r.partition,
    offset: r.offset,
    timestamp: r.timestamp,
    ...decodeKey(r.key),
    value: value.value,
    encoding: value.encoding,
    headers: r.headers,
  };
}
