/**
 * Open connections per client IP address, so one host cannot take all of server.maxConnections.
 * IPv6 clients are counted per /64 (addressBlock): a host may use any address of its /64.
 * Loopback is not counted unless asked: on an edge host a local TLS-terminating proxy connects
 * from 127.0.0.1 for all of its clients, and server.maxConnections still bounds them.
 */
import { addressBlock, isLoopbackAddress } from "./address.ts";

export class ConnectionsPerIp {
  readonly #open = new Map<string, number>();

  /** `max` 0: no limit. */
  constructor(readonly max: number, readonly countLoopback: boolean) {}

  /** Takes a slot for `ip`; false (and nothing taken) when it has `max` open already. */
  acquire(ip: string): boolean {
    if (!this.#counts(ip)) return true;
    const block = addressBlock(ip);
    const n = this.#open.get(block) ?? 0;
    if (n >= this.max) return false;
    this.#open.set(block, n + 1);
    return true;
  }

  release(ip: string): void {
    if (!this.#counts(ip)) return;
    const block = addressBlock(ip);
    const n = (this.#open.get(block) ?? 0) - 1;
    if (n > 0) this.#open.set(block, n);
    else this.#open.delete(block); // the map holds only addresses with connections open
  }

  /** Addresses (IPv6: /64s) with connections open (for tests and metrics). */
  get addresses(): number {
    return this.#open.size;
  }

  #counts(ip: string): boolean {
    return this.max > 0 && (this.countLoopback || !isLoopbackAddress(ip));
  }
}
