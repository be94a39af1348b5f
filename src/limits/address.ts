/** Address helpers for the limits (pure). */
import { ipv6Groups } from "../util/ip.ts";

export { isLoopbackAddress } from "../util/ip.ts";

/** The client's address as the socket reports it, with IPv4-mapped IPv6 (::ffff:a.b.c.d) made plain. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return "unknown";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}

/**
 * What a per-address limit counts `ip` under: an IPv4 address as it is, an IPv6 address by its /64
 * (written "2001:db8:0:7::/64"). A host is given a whole /64 and may pick any address in it at will,
 * so counting exact IPv6 addresses would let one host open as many connections as it likes.
 * Anything else (a name a proxy sent, "unknown") is counted as it is.
 */
export function addressBlock(ip: string): string {
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    // IPv4-mapped (::ffff:a01:203 is 10.1.2.3): the IPv4 host it is.
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join(".");
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}
