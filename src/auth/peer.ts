/**
 * Where a connection comes from, as far as authentication cares: the socket's address, and whether
 * the upgrade request came through a proxy (it carries Forwarded, X-Forwarded-For or X-Real-IP).
 * A proxy on the same host connects from loopback for every client it forwards, so loopback alone
 * does not mean "this machine".
 */
import { clientAddress, isLoopbackAddress } from "../limits/address.ts";

export interface Peer {
  /** The socket's remote address (IPv4-mapped IPv6 made plain). */
  readonly address: string;
  /** The request names a client beyond the socket: it came through a proxy. */
  readonly forwarded: boolean;
  /**
   * The address per-address limits count: the client a proxy on loopback names (the last hop it
   * added), else the socket's. Headers from other addresses are not believed: anyone can send them.
   */
  readonly limitAddress: string;
}

type Headers = Record<string, string | string[] | undefined>;

const FORWARDING_HEADERS = ["forwarded", "x-forwarded-for", "x-real-ip"] as const;

const last = (v: string | string[] | undefined) =>
  (Array.isArray(v) ? v.join(",") : v ?? "").split(",").pop()!;

/**
 * The host alone, from an address a proxy wrote: some add the client's port ("203.0.113.9:4711",
 * "[2001:db8::1]:4711", as Forwarded allows and some X-Forwarded-For writers do), and each port
 * counted apart would defeat the per-address limits.
 */
function withoutPort(address: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(address);
  if (bracketed) return bracketed[1];
  const v4 = /^(?:::ffff:)?(\d{1,3}(?:\.\d{1,3}){3}):\d+$/i.exec(address); // mapped, or plain
  return v4 ? v4[1] : address;
}

/** The client the nearest proxy names, from its headers (node lower-cases their names). */
function forwardedClient(headers: Headers): string | undefined {
  const xff = last(headers["x-forwarded-for"]).trim();
  if (xff) return withoutPort(xff);
  const real = last(headers["x-real-ip"]).trim();
  if (real) return withoutPort(real);
  const m = /for=\s*"?([^";,\s]+)/i.exec(last(headers["forwarded"]));
  return m ? withoutPort(m[1]) : undefined;
}

export function peerOf(remoteAddress: string | undefined, headers: Headers): Peer {
  const address = clientAddress(remoteAddress);
  const forwarded = FORWARDING_HEADERS.some((h) => headers[h] !== undefined);
  if (!forwarded || !isLoopbackAddress(address)) return { address, forwarded, limitAddress: address };
  // A local proxy that names no client still is not this machine: count it under a name of its own.
  const named = forwardedClient(headers);
  return { address, forwarded, limitAddress: named ? clientAddress(named) : `proxy@${address}` };
}

/** A connection from this machine itself, not through a proxy. */
export function isLocalPeer(peer: Peer): boolean {
  return isLoopbackAddress(peer.address) && !peer.forwarded;
}

/** A connection whose origin is not known: never taken for this machine. */
export const UNKNOWN_PEER: Peer = { address: "unknown", forwarded: false, limitAddress: "unknown" };
