/**
 * Which browser pages may open a WebSocket to the bridge. Browsers apply no CORS to WebSockets, so
 * without this any page open on a machine that reaches the bridge (loopback included) could use it.
 * A browser always sends Origin; other clients usually send none and are not checked here.
 *
 * Allowed: the bridge's own pages (the Origin is this very host:port, reached by a name the bridge
 * knows, see `knownHosts`), and the origins listed in server.allowedOrigins ("*": any).
 */

export type OriginVerdict = { allowed: true } | { allowed: false; why: string };

/** Lower-cased scheme://host[:port], the default port dropped; undefined when it is no origin. */
export function normalizeOrigin(s: string): string | undefined {
  try {
    const u = new URL(s);
    if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/** The host name alone (brackets kept for IPv6) of a Host header or URL authority. */
function hostName(authority: string): string | undefined {
  try {
    return new URL(`http://${authority}`).hostname;
  } catch {
    return undefined;
  }
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export class OriginPolicy {
  readonly #any: boolean;
  readonly #listed: Set<string>;
  readonly #known: Set<string>;

  /**
   * `secure`: the bridge serves TLS (its pages are https:). `knownHosts`: host names by which the
   * bridge is reached on purpose (its host name, ha.advertisedUrl's host). IP literals and
   * "localhost" are always known. A page from an unknown name that resolves to the bridge (DNS
   * rebinding) looks same-origin, so it counts as the bridge's own only under a known name.
   */
  constructor(allowed: readonly string[], readonly secure: boolean, knownHosts: readonly string[] = []) {
    this.#any = allowed.includes("*");
    this.#listed = new Set(allowed.map(normalizeOrigin).filter((o): o is string => o !== undefined));
    this.#known = new Set(["localhost", ...knownHosts.map((h) => h.toLowerCase())]);
    for (const o of this.#listed) this.#known.add(new URL(o).hostname);
  }

  /** `origin`: the Origin header (undefined: not a browser); `host`: the Host header. */
  check(origin: string | undefined, host: string | undefined): OriginVerdict {
    if (origin === undefined || this.#any) return { allowed: true };
    const o = normalizeOrigin(origin);
    if (o === undefined) return { allowed: false, why: `origin ${JSON.stringify(origin)} is not http(s)` };
    if (this.#listed.has(o)) return { allowed: true };
    if (host !== undefined && this.#isOwn(o, host)) return { allowed: true };
    return { allowed: false, why: `origin ${o} is not in server.allowedOrigins` };
  }

  #isOwn(origin: string, host: string): boolean {
    const own = normalizeOrigin(`${this.secure ? "https" : "http"}://${host}`);
    if (own !== origin) return false;
    const name = hostName(host);
    if (name === undefined) return false;
    return name.startsWith("[") || IPV4.test(name) || this.#known.has(name);
  }
}
