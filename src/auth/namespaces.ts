/**
 * What a principal's names are on the bridge: the clientIds it may say hello with, and the Kafka
 * groups its group subscriptions become. Both are built on its namespace (src/protocol/namespace.ts),
 * which holds no '.', so no two principals' names can meet; the anonymous connections share the
 * namespace "anonymous", an id no token may claim (jwt.ts, the apiKeys schema).
 */
import type { Config } from "../config/schema.ts";
import { isBoundClientId, principalNamespace } from "../protocol/mod.ts";
import type { Principal } from "./principal.ts";

type AuthConfig = Config["auth"];

/** Whether any connection can be a principal of its own (a token is accepted), besides anonymous. */
export function acceptsTokens(auth: AuthConfig): boolean {
  const j = auth.jwt;
  return auth.apiKeys.length > 0 || j.secretFile !== undefined || j.publicKeyFiles.length > 0 ||
    j.jwksUrl !== undefined;
}

/**
 * Why `principal` may not say hello as `clientId` (auth.clientIdBinding), or undefined when it may.
 * Anonymous connections are bound to "anonymous" only where the bridge also accepts tokens: only
 * there is someone to impersonate, and a bridge without tokens keeps taking any clientId.
 */
export function clientIdRefusal(
  clientId: string,
  principal: Principal,
  auth: AuthConfig,
): string | undefined {
  const binding = auth.clientIdBinding;
  if (binding === "any") return undefined;
  if (principal.kind === "anonymous" && !acceptsTokens(auth)) return undefined;
  if (isBoundClientId(clientId, principal.id, binding)) return undefined;
  const ns = principalNamespace(principal.id);
  const who = principal.kind === "anonymous" ? "anonymous connections" : `"${principal.id}"`;
  return `clientId "${clientId}" is not bound to ${who}: use "${ns}"` +
    (binding === "prefix" ? ` or "${ns}.<anything>"` : "");
}

/**
 * The Kafka group of `principal`'s group `group`. With auth.namespaceGroups its namespace comes
 * first (anonymous connections' too, under "anonymous"), so no two principals share a group's
 * offsets, nor can one steal another's.
 */
export function kafkaGroupId(group: string, principal: Principal, config: Config): string {
  const prefix = config.kafka.consumer.groupPrefix;
  if (!config.auth.namespaceGroups) return prefix + group;
  return `${prefix}${principalNamespace(principal.id)}.${group}`;
}
