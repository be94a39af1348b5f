/**
 * A principal's namespace: the form of its id that goes before a '.' in the names the bridge
 * binds to it, its clientIds ("<namespace>" or "<namespace>.<anything>") and its Kafka groups
 * ("<groupPrefix><namespace>.<group>"). Ids may contain '.', so the namespace escapes it
 * (percent-encoding '%' and '.'): a namespace never holds a '.', the first '.' after it always
 * ends it, and two ids never share one. Principal "a" with group "b.x" is "a.b.x"; principal
 * "a.b" with group "x" is "a%2Eb.x". An id without '.' or '%' is its own namespace, so the
 * names of such principals are what they were before the escaping. Pure: shared with clients.
 */

/** The id of every anonymous connection; no token may name a principal so. */
export const ANONYMOUS_ID = "anonymous";

/** The principal id `id` as it appears in the names bound to it. */
export function principalNamespace(id: string): string {
  return id.replaceAll("%", "%25").replaceAll(".", "%2E");
}

/** Whether `clientId` is bound to principal `id`: its namespace, or (prefix) under it. */
export function isBoundClientId(clientId: string, id: string, binding: "prefix" | "exact"): boolean {
  const ns = principalNamespace(id);
  return clientId === ns || (binding === "prefix" && clientId.startsWith(`${ns}.`));
}

/**
 * The header names the bridge writes on every record; a client may not send any header whose
 * name starts with "eb-" (in any case), so a consumer can trust them.
 */
export const RESERVED_HEADER_PREFIX = "eb-";

export function isReservedHeader(name: string): boolean {
  return name.slice(0, RESERVED_HEADER_PREFIX.length).toLowerCase() === RESERVED_HEADER_PREFIX;
}
