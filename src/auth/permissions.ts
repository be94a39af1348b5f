/**
 * What one principal may do: publish and subscribe on topic patterns, join groups by
 * pattern. Patterns are globs ('*' = any run of characters) over Kafka topic names (after
 * topics.clientPrefix is stripped) and over group names as the client sends them.
 */

export interface PermissionSpec {
  publish: string[];
  subscribe: string[];
  groups: string[];
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`);
}

const matcher = (globs: string[]) => {
  const res = globs.map(globToRegExp);
  return (name: string) => res.some((r) => r.test(name));
};

export class Permissions {
  readonly mayPublish: (kafkaTopic: string) => boolean;
  readonly maySubscribe: (kafkaTopic: string) => boolean;
  readonly mayJoin: (group: string) => boolean;

  constructor(readonly spec: PermissionSpec) {
    this.mayPublish = matcher(spec.publish);
    this.maySubscribe = matcher(spec.subscribe);
    this.mayJoin = matcher(spec.groups);
  }
}

const MAX_PATTERNS = 1_000;

/**
 * A token's permissions claim: an object of three optional lists of patterns. Returns the
 * spec, or why it is malformed (the token is then refused: a typo must not widen access).
 */
export function parsePermissionsClaim(value: unknown): PermissionSpec | string {
  if (value === undefined) return { publish: [], subscribe: [], groups: [] };
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return "must be an object with publish, subscribe and groups lists";
  }
  const v = value as Record<string, unknown>;
  const spec: PermissionSpec = { publish: [], subscribe: [], groups: [] };
  for (const field of ["publish", "subscribe", "groups"] as const) {
    const list = v[field];
    if (list === undefined) continue;
    if (
      !Array.isArray(list) || list.length > MAX_PATTERNS ||
      !list.every((p) => typeof p === "string" && p.length > 0 && p.length <= 300)
    ) {
      return `"${field}" must be a list of up to ${MAX_PATTERNS} non-empty patterns`;
    }
    spec[field] = list as string[];
  }
  return spec;
}
