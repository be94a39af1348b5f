/** `edge-bridge version`. */
import meta from "../../deno.json" with { type: "json" };
import { PROTOCOL_VERSION } from "../protocol/mod.ts";
import { parseFlags } from "./options.ts";

export const VERSION = meta.version;
export const VERSION_HELP = `edge-bridge version: print the version

Usage: edge-bridge version [--json]

  --json      print {"version", "protocol", "deno", "target"} as JSON

target is the platform this program was built for (a compiled binary: its --target).
  -h, --help  show this help`;

export function version(args: string[]): number {
  const { values } = parseFlags(args, { json: { type: "boolean" }, help: { type: "boolean", short: "h" } });
  if (values.help) {
    console.log(VERSION_HELP);
    return 0;
  }
  const info = {
    version: VERSION,
    protocol: PROTOCOL_VERSION,
    deno: Deno.version.deno,
    target: Deno.build.target,
  };
  console.log(
    values.json
      ? JSON.stringify(info)
      : `edge-bridge ${info.version} (protocol v${info.protocol}, deno ${info.deno}, ${info.target})`,
  );
  return 0;
}
