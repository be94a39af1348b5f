/**
 * The config as it may be shown (`edge-bridge check-config`, which people paste into tickets and
 * CI logs): every value that is a secret, or lets one be guessed, replaced. Paths to secret files
 * stay: they say where the secret is, not what.
 */
import type { Config } from "./schema.ts";

export const REDACTED = "[redacted]";

export function redactSecrets(config: Config): Config {
  const copy: Config = structuredClone(config);
  const sasl = copy.kafka.sasl;
  if (sasl.password !== undefined) sasl.password = REDACTED;
  // A hash of a key a person chose can be brute-forced offline; keep only which kind it is.
  for (const key of copy.auth.apiKeys) key.hash = `${key.hash.split(":")[0]}:${REDACTED}`;
  return copy;
}
