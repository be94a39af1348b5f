/**
 * The files the bridge serves to browsers: the console page at /, its script and style under /console/, and
 * the SDK at /sdk/edge-bridge.js. Their text comes from assets.generated.ts, a plain module built by
 * scripts/build_assets.ts, so `deno compile` embeds it like any other module (see that script for why).
 *
 * Caching: every asset is sent with an ETag and `Cache-Control: no-cache`, so a browser keeps its copy but
 * asks each time whether it is current (a 304 when it is). The URLs carry no version, and after a bridge
 * upgrade a page must never run an old SDK against the new bridge.
 */
import { createHash } from "node:crypto";
import { CONSOLE_CSS, CONSOLE_JS, INDEX_HTML, SDK_JS } from "./assets.generated.ts";

export const SDK_PATH = "/sdk/edge-bridge.js";

export interface AssetResponse {
  status: 200 | 304;
  headers: Record<string, string>;
  /** Empty for a 304. */
  body: Uint8Array;
}

interface Asset {
  body: Uint8Array;
  headers: Record<string, string>;
  etag: string;
}

/**
 * The page may talk to any bridge the person lists (ws: and wss: anywhere) but loads nothing from elsewhere:
 * no script, style, font or frame that is not the bridge's own.
 */
const PAGE_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self' ws: wss:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function asset(text: string, type: string, extra: Record<string, string> = {}): Asset {
  const body = new TextEncoder().encode(text);
  const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
  return {
    body,
    etag,
    headers: {
      "content-type": type,
      "content-length": String(body.length),
      "cache-control": "no-cache",
      etag,
      "x-content-type-options": "nosniff",
      ...extra,
    },
  };
}

export class ConsoleAssets {
  readonly #table = new Map<string, Asset>();

  /** `wsPath` is the bridge's WebSocket path (server.path): the page connects there by default. */
  constructor(wsPath: string) {
    const page = INDEX_HTML.replace("%WS_PATH%", escapeHtml(wsPath));
    this.#table.set(
      "/",
      asset(page, "text/html; charset=utf-8", {
        "content-security-policy": PAGE_POLICY,
        "referrer-policy": "no-referrer",
      }),
    );
    this.#table.set("/console/console.js", asset(CONSOLE_JS, "text/javascript; charset=utf-8"));
    this.#table.set("/console/console.css", asset(CONSOLE_CSS, "text/css; charset=utf-8"));
    // Any page may load the SDK (it only opens WebSockets its own page asks for).
    this.#table.set(
      SDK_PATH,
      asset(SDK_JS, "text/javascript; charset=utf-8", { "access-control-allow-origin": "*" }),
    );
  }

  get paths(): string[] {
    return [...this.#table.keys()];
  }

  /** The response for `path`, or undefined when it is not an asset; 304 when `ifNoneMatch` names its ETag. */
  respond(path: string, ifNoneMatch?: string): AssetResponse | undefined {
    const a = this.#table.get(path);
    if (!a) return undefined;
    const tags = (ifNoneMatch ?? "").split(",").map((t) => t.trim().replace(/^W\//, ""));
    if (tags.includes(a.etag) || tags.includes("*")) {
      const { "content-length": _, "content-type": __, ...headers } = a.headers;
      return { status: 304, headers, body: new Uint8Array() };
    }
    return { status: 200, headers: a.headers, body: a.body };
  }
}
