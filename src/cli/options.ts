/** Flags shared by every command that reads config, parsed with node:util parseArgs. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { loadConfig } from "../config/load.ts";
import type { Config } from "../config/schema.ts";

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export const CONFIG_OPTIONS = {
  config: { type: "string", short: "c" },
  set: { type: "string", multiple: true },
  host: { type: "string" },
  port: { type: "string", short: "p" },
  brokers: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export const CONFIG_HELP = `Config options (later wins: file < EDGE_BRIDGE_* env < flags):
  -c, --config FILE     YAML or JSON config file (or EDGE_BRIDGE_CONFIG)
      --set KEY=VALUE   set any config key, e.g. --set server.maxConnections=500 (repeatable)
      --host HOST       same as --set server.host=HOST
  -p, --port PORT       same as --set server.port=PORT
      --brokers LIST    same as --set kafka.brokers=LIST (comma-separated host:port)
      --log-level LEVEL same as --set log.level=LEVEL
  -h, --help            show this help`;

export function parseFlags<O extends ParseArgsConfig["options"]>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** Where `produce` and `consume` connect without --url: a bridge on its default host and port. */
export const DEFAULT_BRIDGE_URL = "ws://127.0.0.1:8080/ws";

/** The bridges named with --url (each a ws:// or wss:// URL), or the default one. */
export function bridgeUrls(values: string[] | undefined): string[] {
  const urls = values ?? [DEFAULT_BRIDGE_URL];
  for (const u of urls) {
    let protocol = "";
    try {
      protocol = new URL(u).protocol;
    } catch { /* not a URL at all: refused below */ }
    if (protocol !== "ws:" && protocol !== "wss:") {
      throw new UsageError(`--url must be a ws:// or wss:// URL such as ${DEFAULT_BRIDGE_URL}, got "${u}"`);
    }
  }
  return urls;
}

/** A flag that must be a whole number from 1 (counts, sizes); undefined when the flag is absent. */
export function positiveIntegerFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < 1) {
    throw new UsageError(`--${name} must be a whole number from 1, got "${value}"`);
  }
  return n;
}

/** A flag that must be a number above 0 (rates); undefined when the flag is absent. */
export function positiveNumberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`--${name} must be a number above 0, got "${value}"`);
  }
  return n;
}

type ConfigFlags = {
  config?: string;
  set?: string[];
  host?: string;
  port?: string;
  brokers?: string;
  "log-level"?: string;
};

export function configFromFlags(values: ConfigFlags): Promise<Config> {
  const sets = [...(values.set ?? [])];
  if (values.host !== undefined) sets.push(`server.host=${values.host}`);
  if (values.port !== undefined) sets.push(`server.port=${values.port}`);
  if (values.brokers !== undefined) sets.push(`kafka.brokers=${values.brokers}`);
  if (values["log-level"] !== undefined) sets.push(`log.level=${values["log-level"]}`);
  return loadConfig({ path: values.config, env: Deno.env.toObject(), sets });
}

export function nodeId(config: Config): string {
  return config.node.id ?? Deno.hostname();
}
