/**
 * WebSocket close reasons are limited to 123 bytes of UTF-8 (RFC 6455 5.5: a control frame carries
 * at most 125 bytes, two of which are the code); npm:ws throws on a longer one. Anything that puts a
 * URL or a message into a close call cuts it here first. Pure: no runtime calls.
 */

export const MAX_CLOSE_REASON_BYTES = 123;

/** UTF-8 length of one code point. */
function utf8Bytes(codePoint: number): number {
  return codePoint < 0x80 ? 1 : codePoint < 0x800 ? 2 : codePoint < 0x10000 ? 3 : 4;
}

/** Bytes `text` takes in UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD that replace it). */
export function utf8Length(text: string): number {
  let n = 0;
  for (const ch of text) n += utf8Bytes(ch.codePointAt(0)!);
  return n;
}

/**
 * `text` cut to at most `maxBytes` of UTF-8, whole code points only (never half a character nor
 * half a surrogate pair). When cut, it ends with "…" so a reader sees it was shortened.
 */
export function safeCloseReason(text: string, maxBytes = MAX_CLOSE_REASON_BYTES): string {
  if (utf8Length(text) <= maxBytes) return text;
  const ellipsis = "…"; // 3 bytes
  const room = maxBytes - utf8Length(ellipsis);
  let used = 0;
  let out = "";
  for (const ch of text) {
    const n = utf8Bytes(ch.codePointAt(0)!);
    if (used + n > room) break;
    used += n;
    out += ch;
  }
  return room >= 0 ? out + ellipsis : "";
}

/**
 * The refusal reason that names the live's URL, `live=<url>`, when it fits whole: a URL cut short
 * would send clients to the wrong place. Otherwise a plain reason (the error frame still names it).
 */
export function liveCloseReason(liveUrl: string | undefined, fallback = "not live"): string {
  if (liveUrl === undefined) return safeCloseReason(fallback);
  const reason = `live=${liveUrl}`;
  return utf8Length(reason) <= MAX_CLOSE_REASON_BYTES
    ? reason
    : safeCloseReason(`${fallback}; the live's URL is in the error frame`);
}
