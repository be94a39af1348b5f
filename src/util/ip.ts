/** IP address text, pure: the forms an address may be written in, and which of them are loopback. */

/**
 * The eight 16-bit groups of an IPv6 address (`::` and a dotted IPv4 tail expanded; a zone such as
 * "%eth0" ignored), or undefined if `ip` is not IPv6 text.
 */
export function ipv6Groups(ip: string): number[] | undefined {
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

/**
 * A loopback address in any written form: 127.0.0.0/8, `::1` (also `0:0:0:0:0:0:0:1`), or an IPv4
 * loopback address mapped into IPv6 (`::ffff:127.0.0.1`). A zone id names an interface: not loopback.
 */
export function isLoopbackAddress(ip: string): boolean {
  const v4 = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  if (ip.includes("%")) return false;
  const g = ipv6Groups(ip);
  if (!g) return false;
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return true;
  return g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff && g[6] >> 8 === 127;
}

/**
 * A host (as in a URL or a listen address) that only this machine can reach: `localhost` or a
 * loopback address, bracketed or not. Any other name could resolve anywhere.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || isLoopbackAddress(h);
}
