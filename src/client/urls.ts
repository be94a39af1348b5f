/**
 * Which bridge to try next: the configured list in order, wrapping around, with a detour
 * to the live named by a refusing backup (`live=<url>`) even when it is not in the list.
 */

export class UrlRing {
  readonly urls: readonly string[];
  #index = 0;
  #detour?: string;

  constructor(urls: readonly string[]) {
    if (!Array.isArray(urls) || urls.length === 0) {
      throw new TypeError('urls: at least one bridge URL is needed, e.g. ["ws://127.0.0.1:8080/ws"]');
    }
    for (const u of urls) checkUrl(u, "urls");
    this.urls = [...urls];
  }

  get current(): string {
    return this.#detour ?? this.urls[this.#index];
  }

  /** The current URL failed or is not live. `live` is where a refusing node said the live is. */
  next(live?: string): void {
    if (live !== undefined && live !== this.current && isWebSocketUrl(live)) {
      const i = this.urls.indexOf(live);
      if (i >= 0) {
        this.#index = i;
        this.#detour = undefined;
      } else {
        this.#detour = live; // after it fails, the list goes on after the node that sent us there
      }
      return;
    }
    if (this.#detour !== undefined) this.#detour = undefined;
    this.#index = (this.#index + 1) % this.urls.length;
  }
}

function isWebSocketUrl(u: string): boolean {
  try {
    const { protocol } = new URL(u);
    return protocol === "ws:" || protocol === "wss:";
  } catch {
    return false;
  }
}

function checkUrl(u: unknown, what: string): void {
  if (typeof u !== "string" || !isWebSocketUrl(u)) {
    throw new TypeError(`${what}: "${String(u)}" is not a ws:// or wss:// URL`);
  }
}

/** The live URL in a 4001 close reason (`live=<url>`), if any. */
export function liveFromReason(reason: string): string | undefined {
  const m = /^live=(\S+)$/.exec(reason.trim());
  return m ? m[1] : undefined;
}
