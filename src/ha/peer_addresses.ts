/**
 * The IP addresses heartbeats may come from: those of the configured peers. Names are resolved
 * again from time to time (a container's address changes when it is recreated); literal IPs need
 * no lookup. The check is by address only, not port: a relay or NAT may change the source port, and
 * the HMAC, not the address, is what authenticates a beat.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

export class PeerAddresses {
  #allowed = new Set<string>();
  #resolvedAt = -Infinity;
  #resolving?: Promise<void>;

  constructor(readonly hosts: string[], readonly refreshMs = 5_000) {
    for (const h of hosts) if (isIP(h)) this.#allowed.add(h);
  }

  /** Whether `address` is a peer's; a stale name cache is refreshed in the background. */
  allows(address: string, now: number): boolean {
    if (now - this.#resolvedAt > this.refreshMs) void this.refresh(now);
    return this.#allowed.has(address.replace(/^::ffff:/, ""));
  }

  refresh(now = performance.now()): Promise<void> {
    this.#resolvedAt = now;
    this.#resolving ??= (async () => {
      const next = new Set<string>();
      for (const h of this.hosts) {
        if (isIP(h)) next.add(h);
        else {
          try {
            for (const a of await lookup(h, { all: true, family: 4 })) next.add(a.address);
          } catch {
            // Not resolvable now (a peer not started yet): keep what it resolved to before.
            for (const a of this.#allowed) next.add(a);
          }
        }
      }
      this.#allowed = next;
    })().finally(() => (this.#resolving = undefined));
    return this.#resolving;
  }
}
