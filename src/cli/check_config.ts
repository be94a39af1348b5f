/** `edge-bridge check-config`: validate the effective config and print it. */
import { redactSecrets } from "../config/redact.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, configFromFlags, parseFlags } from "./options.ts";

export const CHECK_CONFIG_HELP = `edge-bridge check-config: validate the configuration without starting

Usage: edge-bridge check-config [options]

Builds the effective config from the file, EDGE_BRIDGE_* env vars and flags,
prints it as JSON (secret values such as kafka.sasl.password shown as
"[redacted]") and exits 0; or names every bad key and value and exits 2.

${CONFIG_HELP}`;

export async function checkConfig(args: string[]): Promise<number> {
  const { values } = parseFlags(args, CONFIG_OPTIONS);
  if (values.help) {
    console.log(CHECK_CONFIG_HELP);
    return 0;
  }
  const config = await configFromFlags(values);
  console.log(JSON.stringify(redactSecrets(config), null, 2));
  console.error("config OK");
  return 0;
}
