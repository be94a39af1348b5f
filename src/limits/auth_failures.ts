/**
 * Failed authentications per client address: past `max` within `windowMs`, the address is refused
 * without its token being checked until the window has passed, so one host cannot guess keys or
 * keep the bridge hashing. IPv6 addresses count by their /64 (addressBlock), as connections do: a
 * host picks any address in its /64 at will. Loopback is exempt unless asked (as in
 * ConnectionsPerIp): a local proxy connects from 127.0.0.1 for all of its clients, who would lock
 * each other out.
 */
import { addressBlock, isLoopbackAddress } from "./address.ts";

/** Addresses (IPv6: /64 blocks) remembered at most: many clients cannot grow the table without end. */
const MAX_ADDRESSES = 50_000;

export class AuthFailures {
  /** Per address: when its window began and the failures in it. Map order: oldest window first. */
  readonly #windows = new Map<string, { since: number; count: number }>();

  /** `max` 0: no limit. */
  constructor(readonly max: number, readonly windowMs: number, readonly countLoopback: boolean) {}

  /** How long `address` must wait before its next attempt is checked: 0 when it may try now. */
  waitMs(address: string, now = performance.now()): number {
    const block = addressBlock(address);
    const w = this.#windows.get(block);
    if (!w || w.count < this.max) return 0;
    const left = w.since + this.windowMs - now;
    if (left > 0) return Math.ceil(left);
    this.#windows.delete(block);
    return 0;
  }

  /** An attempt from `address` failed. */
  failed(address: string, now = performance.now()): void {
    if (this.max === 0 || (!this.countLoopback && isLoopbackAddress(address))) return;
    const block = addressBlock(address);
    const w = this.#windows.get(block);
    if (w && now - w.since < this.windowMs) {
      w.count++;
      return;
    }
    this.#windows.delete(block); // re-inserted last: the map stays ordered by window start
    if (this.#windows.size >= MAX_ADDRESSES) this.#prune(now);
    this.#windows.set(block, { since: now, count: 1 });
  }

  /** Addresses (IPv6: /64 blocks) remembered (for tests). */
  get addresses(): number {
    return this.#windows.size;
  }

  /** Drops windows that have passed; if none has, the oldest one. */
  #prune(now: number): void {
    for (const [address, w] of this.#windows) {
      if (now - w.since < this.windowMs) break;
      this.#windows.delete(address);
    }
    if (this.#windows.size >= MAX_ADDRESSES) {
      this.#windows.delete(this.#windows.keys().next().value!);
    }
  }
}
