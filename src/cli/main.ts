/** Subcommand dispatch: one file per command, errors turned into exit codes. */
import { ConfigError } from "../config/load.ts";
import { checkConfig } from "./check_config.ts";
import { consume } from "./consume.ts";
import { hashKey } from "./hash_key.ts";
import { produce } from "./produce.ts";
import { UsageError } from "./options.ts";
import { serve } from "./serve.ts";
import { version } from "./version.ts";

const COMMANDS: Record<string, { run(args: string[]): number | Promise<number>; summary: string }> = {
  serve: { run: serve, summary: "run the bridge" },
  "check-config": { run: checkConfig, summary: "validate the configuration and print it" },
  produce: {
    run: produce,
    summary: 'send numbered "hello N" messages through a bridge (pair), printing acks',
  },
  consume: { run: consume, summary: "print each message of a topic with its position" },
  "hash-key": { run: hashKey, summary: "hash an API key for auth.apiKeys (or --generate one)" },
  version: { run: version, summary: "print the version" },
};

export const MAIN_HELP = `edge-bridge: a WebSocket <-> Kafka edge bridge

Usage: edge-bridge <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`).join("\n")}

Run 'edge-bridge <command> --help' for a command's options.
Docs: README.md, docs/configuration.md, docs/protocol.md`;

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    console.log(MAIN_HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version" || name === "-V") return version([]);
  const command = COMMANDS[name];
  if (!command) {
    console.error(`edge-bridge: unknown command "${name}"\n\n${MAIN_HELP}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof ConfigError || e instanceof UsageError) {
      console.error(`edge-bridge ${name}: ${e.message}`);
      return 2;
    }
    console.error(`edge-bridge ${name}: fatal:`, e);
    return 1;
  }
}
