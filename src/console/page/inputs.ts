/**
 * What the console's forms say, turned into SDK arguments. Pure (no DOM), so each rule is unit-tested;
 * every refusal is an InputError whose message names the field and what it expects.
 */

export class InputError extends Error {
  override name = "InputError";
}

export type Encoding = "utf8" | "json" | "base64";
export type From = "earliest" | "latest" | { offsets: Record<string, string> } | { timestamp: number };

const ENCODINGS: readonly string[] = ["utf8", "json", "base64"];

/** The WebSocket URL of the bridge that served the page: same host, ws or wss as the page's scheme. */
export function defaultBridgeUrl(page: { protocol: string; host: string }, wsPath: string): string {
  return `${page.protocol === "https:" ? "wss:" : "ws:"}//${page.host}${wsPath}`;
}

/** Bridge URLs, one per line (commas and spaces also separate them); each must be ws:// or wss://. */
export function parseUrls(text: string): string[] {
  const urls = text.split(/[\s,]+/).filter((u) => u !== "");
  if (urls.length === 0) {
    throw new InputError("Bridge URLs: enter at least one URL, such as ws://host:8080/ws");
  }
  for (const u of urls) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new InputError(`Bridge URLs: "${u}" is not a URL (expected ws://host:port/path)`);
    }
    if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
      throw new InputError(`Bridge URLs: "${u}" must start with ws:// or wss://`);
    }
  }
  return urls;
}

export function parseEncoding(text: string, field: string): Encoding {
  if (!ENCODINGS.includes(text)) throw new InputError(`${field}: "${text}" is not one of utf8, json, base64`);
  return text as Encoding;
}

export function parseTopic(text: string, field = "Topic"): string {
  const topic = text.trim();
  if (topic === "") throw new InputError(`${field}: enter a topic name`);
  return topic;
}

/** The value to publish: text as is (utf8), parsed JSON (json), or checked base64 text (base64). */
export function parseValue(text: string, encoding: Encoding): unknown {
  if (encoding === "json") {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new InputError(`Value: not valid JSON for the json encoding (${(e as Error).message})`);
    }
  }
  if (encoding === "base64") {
    const b64 = text.replace(/\s+/g, "");
    if (b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) {
      throw new InputError("Value: not standard base64 with padding (A-Z a-z 0-9 + / and = at the end)");
    }
    return b64;
  }
  return text;
}

/** An optional non-negative integer field (empty: undefined). */
export function parseOptionalInt(text: string, field: string): number | undefined {
  const t = text.trim();
  if (t === "") return undefined;
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t))) {
    throw new InputError(`${field}: "${t}" is not a whole number of 0 or more`);
  }
  return Number(t);
}

/** A whole number of at least 1. */
export function parsePositiveInt(text: string, field: string): number {
  const n = parseOptionalInt(text, field);
  if (n === undefined || n < 1) throw new InputError(`${field}: enter a whole number of 1 or more`);
  return n;
}

/** Where a subscription starts: earliest, latest, per-partition offsets ("0:42, 1:7") or a time. */
export function parseFrom(kind: string, offsetsText: string, timestampText: string): From {
  switch (kind) {
    case "earliest":
    case "latest":
      return kind;
    case "offsets": {
      const offsets: Record<string, string> = {};
      const parts = offsetsText.split(/[\s,]+/).filter((p) => p !== "");
      if (parts.length === 0) {
        throw new InputError("Offsets: enter partition:offset pairs, such as 0:42, 1:7");
      }
      for (const part of parts) {
        const m = /^(\d+):(\d+)$/.exec(part);
        if (!m) throw new InputError(`Offsets: "${part}" is not partition:offset (such as 0:42)`);
        if (m[1] in offsets) throw new InputError(`Offsets: partition ${m[1]} is named twice`);
        offsets[String(Number(m[1]))] = m[2].replace(/^0+(?=\d)/, "");
      }
      return { offsets };
    }
    case "timestamp": {
      const t = timestampText.trim();
      if (t === "") throw new InputError("Timestamp: enter milliseconds since the epoch or a date");
      const ms = /^\d+$/.test(t) ? Number(t) : Date.parse(t);
      if (!Number.isSafeInteger(ms) || ms < 0) {
        throw new InputError(`Timestamp: "${t}" is neither milliseconds since the epoch nor a date`);
      }
      return { timestamp: ms };
    }
    default:
      throw new InputError(`From: "${kind}" is not one of earliest, latest, offsets, timestamp`);
  }
}

/** A message's value as text for the list: JSON values as JSON, the rest as they came. */
export function displayValue(value: unknown, encoding: string | undefined): string {
  if (value === null || value === undefined) return "(null)";
  if (encoding === "json" || typeof value !== "string") {
    if (value instanceof Uint8Array) return `(${value.length} bytes)`;
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return value;
}
