/**
 * The token in a WebSocket handshake. Browsers cannot set headers on a WebSocket, but they
 * can offer subprotocols: a client offers "edge-bridge.v1" and "bearer.<token>", and the
 * bridge selects "edge-bridge.v1" (never echoing the token). A query string is never read
 * for a token: URLs end up in logs.
 */

/** The subprotocol the bridge selects. A client that offers a token must offer it too. */
export const SUBPROTOCOL = "edge-bridge.v1";
const BEARER = "bearer.";

/** The token among the offered subprotocols (the Sec-WebSocket-Protocol header), if any. */
export function tokenFromProtocols(header: string | string[] | undefined): string | undefined {
  const values = (Array.isArray(header) ? header.join(",") : header ?? "").split(",");
  for (const v of values) {
    const p = v.trim();
    if (p.startsWith(BEARER) && p.length > BEARER.length) return p.slice(BEARER.length);
  }
  return undefined;
}

/** The subprotocols a client offers to carry `token`. */
export function protocolsFor(token: string): string[] {
  return [SUBPROTOCOL, BEARER + token];
}
