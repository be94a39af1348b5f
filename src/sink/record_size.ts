/**
 * Upper bounds of what records take in a Kafka v2 record batch (uncompressed), so
 * that batches can be cut below the topic's `max.message.bytes` before Kafka sees
 * them. A bound, not the exact size: every varint is counted at its widest, which
 * over-counts by a few dozen bytes per record and never under-counts.
 */
import type { OutgoingRecord } from "../kafka/types.ts";

/** The record batch header: base offset, length, epoch, magic, crc, ..., record count. */
export const BATCH_OVERHEAD_BYTES = 61;

const VARINT32_MAX = 5;
const VARINT64_MAX = 10;
/** length + attributes + timestamp delta + offset delta + key length + value length + header count. */
const RECORD_FIXED_MAX = VARINT32_MAX + 1 + VARINT64_MAX + VARINT32_MAX + VARINT32_MAX + VARINT32_MAX +
  VARINT32_MAX;

/** UTF-8 length of a string without encoding it. */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      n += 1;
      continue;
    }
    n += 2; // 3 bytes for one UTF-16 unit; a surrogate pair is 4 bytes for its 2 units
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) i++;
  }
  return n;
}

export function recordSizeBound(r: OutgoingRecord): number {
  let n = RECORD_FIXED_MAX + (r.key?.byteLength ?? 0) + r.value.byteLength;
  for (const k in r.headers) n += 2 * VARINT32_MAX + utf8Length(k) + utf8Length(r.headers[k]);
  return n;
}
