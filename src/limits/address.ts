/** Address helpers for the limits (pure). */

/** The client's address as the socket reports it, with IPv4-mapped IPv6 (::ffff:a.b.c.d) made plain. */
export function clientAddress(remote: string | undefined): string {
  if (!remote) return "unknown";
  return remote.startsWith("::ffff:") && remote.includes(".") ? remote.slice(7) : remote;
}

export function isLoopbackAddress(ip: string): boolean {
  return ip === "::1" || /^127\./.test(ip);
}
