/**
 * Builds the effective config from a file (YAML or JSON), then EDGE_BRIDGE_* env
 * vars, then `--set key=value` flags, later sources winning. Every error names the
 * key, the value, where it came from and what was expected.
 */
import YAML from "yaml";
import { z } from "zod";
import { type Config, configSchema } from "./schema.ts";

export const ENV_PREFIX = "EDGE_BRIDGE_";
/** Env var naming the config file; not a config key itself. */
export const CONFIG_FILE_ENV = "EDGE_BRIDGE_CONFIG";

type LeafKind = "number" | "string" | "array" | "boolean";
export interface ConfigKey {
  path: string;
  env: string;
  kind: LeafKind;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

function unwrap(t: z.ZodTypeAny): z.ZodTypeAny {
  while (t instanceof z.ZodDefault || t instanceof z.ZodOptional || t instanceof z.ZodEffects) {
    t = t instanceof z.ZodEffects ? t.innerType() : t._def.innerType;
  }
  return t;
}

function walk(t: z.ZodTypeAny, prefix: string[], out: ConfigKey[]): void {
  const inner = unwrap(t);
  if (inner instanceof z.ZodObject) {
    for (const [k, v] of Object.entries(inner.shape as Record<string, z.ZodTypeAny>)) {
      walk(v, [...prefix, k], out);
    }
    return;
  }
  const kind: LeafKind = inner instanceof z.ZodNumber
    ? "number"
    : inner instanceof z.ZodArray
    ? "array"
    : inner instanceof z.ZodBoolean
    ? "boolean"
    : "string";
  const snake = prefix.map((p) => p.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase());
  out.push({ path: prefix.join("."), env: ENV_PREFIX + snake.join("_"), kind });
}

/** Every settable key with its env var name, derived from the schema. */
export const CONFIG_KEYS: readonly ConfigKey[] = (() => {
  const out: ConfigKey[] = [];
  walk(configSchema, [], out);
  return out;
})();
const KEYS_BY_PATH = new Map(CONFIG_KEYS.map((k) => [k.path, k]));
const KEYS_BY_ENV = new Map(CONFIG_KEYS.map((k) => [k.env, k]));

/** Strings from env or flags become the key's type; what does not convert is left for the schema to reject. */
function coerce(raw: string, kind: LeafKind): unknown {
  const s = raw.trim();
  switch (kind) {
    case "number":
      return /^-?\d+(\.\d+)?$/.test(s) ? Number(s) : raw;
    case "boolean":
      return s === "true" ? true : s === "false" ? false : raw;
    case "array":
      return s === "" ? [] : s.split(",").map((x) => x.trim());
    case "string":
      return raw;
  }
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split(".");
  let cur = obj;
  for (const p of parts.slice(0, -1)) {
    if (cur[p] === undefined || cur[p] === null || typeof cur[p] !== "object") cur[p] = {};
    cur = cur[p] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1]] = value;
}

function getPath(obj: unknown, path: (string | number)[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string | number, unknown>)[p];
  }
  return cur;
}

export function parseConfigText(text: string, fileName: string): Record<string, unknown> {
  let data: unknown;
  try {
    data = /\.json$/i.test(fileName) ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new ConfigError([
      `config file ${fileName} is not valid ${/\.json$/i.test(fileName) ? "JSON" : "YAML"}: ${
        (e as Error).message
      }`,
    ]);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new ConfigError([
      `config file ${fileName} must hold a mapping of sections, got ${
        Array.isArray(data) ? "a list" : typeof data
      }`,
    ]);
  }
  return data as Record<string, unknown>;
}

export interface ConfigSources {
  /** Contents and name of the config file, if any. */
  file?: { name: string; text: string };
  env?: Record<string, string | undefined>;
  /** `key.path=value` strings from --set and flag shortcuts. */
  sets?: string[];
}

export function buildConfig(sources: ConfigSources): Config {
  const input: Record<string, unknown> = sources.file
    ? parseConfigText(sources.file.text, sources.file.name)
    : {};
  const origin = new Map<string, string>();
  const problems: string[] = [];

  for (const [name, value] of Object.entries(sources.env ?? {})) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV || value === undefined) continue;
    const key = KEYS_BY_ENV.get(name);
    if (!key) {
      problems.push(
        `unknown environment variable ${name}="${value}"; see docs/configuration.md for the list`,
      );
      continue;
    }
    setPath(input, key.path, coerce(value, key.kind));
    origin.set(key.path, `env ${name}`);
  }
  for (const set of sources.sets ?? []) {
    const eq = set.indexOf("=");
    const path = eq < 0 ? set : set.slice(0, eq);
    const key = KEYS_BY_PATH.get(path);
    if (eq < 0 || !key) {
      problems.push(eq < 0 ? `--set "${set}" must be key=value` : `unknown key "${path}" in --set "${set}"`);
      continue;
    }
    setPath(input, key.path, coerce(set.slice(eq + 1), key.kind));
    origin.set(key.path, "flag");
  }
  if (problems.length) throw new ConfigError(problems);

  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  for (const issue of result.error.issues) {
    if (issue.code === "unrecognized_keys") {
      for (const k of issue.keys) {
        const at = [...issue.path, k].join(".");
        problems.push(`unknown key "${at}"${sources.file ? ` in ${sources.file.name}` : ""}`);
      }
      continue;
    }
    // Array element errors are reported on the whole key, which is what the user wrote.
    const keyPath = issue.path.filter((p) => typeof p === "string").join(".");
    const value = getPath(input, issue.path);
    const from = origin.get(keyPath) ?? (sources.file ? `file ${sources.file.name}` : "defaults");
    problems.push(`${issue.path.join(".")} = ${JSON.stringify(value)} (from ${from}): ${issue.message}`);
  }
  throw new ConfigError(problems);
}

/** Reads the file named by `path` (or EDGE_BRIDGE_CONFIG) and builds the config. */
export async function loadConfig(
  opts: { path?: string; env: Record<string, string>; sets: string[] },
): Promise<Config> {
  const path = opts.path ?? opts.env[CONFIG_FILE_ENV];
  let file: ConfigSources["file"];
  if (path) {
    try {
      file = { name: path, text: await Deno.readTextFile(path) };
    } catch (e) {
      throw new ConfigError([`cannot read config file ${path}: ${(e as Error).message}`]);
    }
  }
  return buildConfig({ file, env: opts.env, sets: opts.sets });
}
