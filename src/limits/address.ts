/** Address helpers for the limits (pure). */

/** The client's address as the socket reports it, with IPv4-mapped IPv6 (::ffff:a.b.c.d) made plain. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return "unknown";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}

export function isLoopbackAddress(ip: string): boolean {
  return ip === "::1" || /^127\./.test(ip);
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

/** The eight 16-bit groups of an IPv6 address (a zone such as "%eth0" ignored), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.split("%")[0];
  if (!text.includes(":")) return undefined;
  const dotted = /^(.*:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number);
    if ([a, b, c, d].some((n) => n > 255)) return undefined;
    text = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const split = (half: string) => (half === "" ? [] : half.split(":"));
  const head = split(halves[0]);
  const tail = halves.length === 2 ? split(halves[1]) : [];
  if (![...head, ...tail].every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  return [...head, ...Array(missing).fill("0"), ...tail].map((g) => parseInt(g, 16));
}
