/**
 * Open connections per client IP address, so one host cannot take all of server.maxConnections.
 * Loopback is not counted unless asked: on an edge host a local TLS-terminating proxy connects
 * from 127.0.0.1 for all of its clients, and server.maxConnections still bounds them.
 */
import { isLoopbackAddress } from "./address.ts";

export class ConnectionsPerIp {
  readonly #open = new Map<string, number>();

  /** `max` 0: no limit. */
  constructor(readonly max: number, readonly countLoopback: boolean) {}

  /** Takes a slot for `ip`; false (and nothing taken) when it has `max` open already. */
  acquire(ip: string): boolean {
    if (!this.#counts(ip)) return true;
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.max) return false;
    this.#open.set(ip, n + 1);
    return true;
  }

  release(ip: string): void {
    if (!this.#counts(ip)) return;
    const n = (this.#open.get(ip) ?? 0) - 1;
    if (n > 0) this.#open.set(ip, n);
    else this.#open.delete(ip); // the map holds only addresses with connections open
  }

  /** Addresses with connections open (for tests and metrics). */
  get addresses(): number {
    return this.#open.size;
  }

  #counts(ip: string): boolean {
    return this.max > 0 && (this.countLoopback || !isLoopbackAddress(ip));
  }
}
