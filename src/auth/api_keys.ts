/**
 * Static API keys. The config holds only a hash of each key: sha256 (fast; fine for keys
 * with 256 random bits, as `generateApiKey` makes) or scrypt (salted and slow, for keys
 * that people chose). A key is compared in constant time.
 *
 * A client presents a key as it is, or as "<id>.<key>" with the id of its auth.apiKeys entry.
 * A key hashed with scrypt must come with its id: the id picks the one hash to try, so a
 * client cannot make the bridge run scrypt against every entry; and scrypt runs a few at a
 * time (BoundedConcurrency), the rest refused as busy.
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { BoundedConcurrency } from "../limits/concurrency.ts";

export type HashKind = "sha256" | "scrypt";

export interface ApiKeyEntry {
  id: string;
  hash: string;
  revoked: boolean;
}

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };

function sha256Hex(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

function scryptAsync(key: string, salt: Buffer, keylen: number, N: number, r: number, p: number) {
  return new Promise<Buffer>((resolve, reject) =>
    scrypt(
      key,
      salt,
      keylen,
      { N, r, p, maxmem: 256 * N * r + 1024 * 1024 },
      (e, out) => e ? reject(e) : resolve(out),
    )
  );
}

/** A new random key: "ebk_" then 32 random bytes in base64url. */
export function generateApiKey(): string {
  return `ebk_${randomBytes(32).toString("base64url")}`;
}

/** The hash to put in auth.apiKeys[].hash. */
export async function hashApiKey(key: string, kind: HashKind = "sha256"): Promise<string> {
  if (kind === "sha256") return `sha256:${sha256Hex(key)}`;
  const salt = randomBytes(16);
  const out = await scryptAsync(key, salt, SCRYPT.keylen, SCRYPT.N, SCRYPT.r, SCRYPT.p);
  return `scrypt:${SCRYPT.N}:${SCRYPT.r}:${SCRYPT.p}:${salt.toString("base64")}:${out.toString("base64")}`;
}

interface ScryptEntry<E> {
  entry: E;
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** Ids are at most this long (the config's limit): only that far is a key searched for "<id>.". */
const MAX_ID_CHARS = 100;

/** Finds the configured key a presented key matches. */
export class ApiKeyStore<E extends ApiKeyEntry> {
  readonly #bySha = new Map<string, E>();
  /** Per id: its scrypt hashes (more than one while a key is being rotated). */
  readonly #scryptById = new Map<string, ScryptEntry<E>[]>();
  readonly #ids = new Set<string>();
  /** Keys already matched against a scrypt hash (by their sha256), so a reconnect costs no scrypt run. */
  readonly #matched = new Map<string, E>();
  readonly #scryptRuns: BoundedConcurrency;

  /** `scryptRuns`: how many scrypt checks may run at once and wait (default: 2 and 32). */
  constructor(entries: readonly E[], scryptRuns = new BoundedConcurrency(2, 32)) {
    this.#scryptRuns = scryptRuns;
    for (const entry of entries) {
      this.#ids.add(entry.id);
      if (entry.hash.startsWith("sha256:")) {
        this.#bySha.set(entry.hash.slice("sha256:".length), entry);
        continue;
      }
      const [, N, r, p, salt, hash] = entry.hash.split(":");
      const list = this.#scryptById.get(entry.id) ?? [];
      this.#scryptById.set(entry.id, list);
      list.push({
        entry,
        N: Number(N),
        r: Number(r),
        p: Number(p),
        salt: Buffer.from(salt, "base64"),
        hash: Buffer.from(hash, "base64"),
      });
    }
  }

  get size(): number {
    let n = this.#bySha.size;
    for (const list of this.#scryptById.values()) n += list.length;
    return n;
  }

  /**
   * The configured ids `presented` starts with, followed by ".", longest first (ids may hold dots
   * themselves: "fleet.a.<key>" names "fleet.a" before "fleet").
   */
  idsNamedBy(presented: string): string[] {
    const ids: string[] = [];
    for (let i = presented.indexOf("."); i > 0 && i <= MAX_ID_CHARS; i = presented.indexOf(".", i + 1)) {
      const id = presented.slice(0, i);
      if (this.#ids.has(id)) ids.unshift(id);
    }
    return ids;
  }

  /**
   * The entry `presented` ("<key>" or "<id>.<key>") matches. Rejects with Busy (from
   * BoundedConcurrency) when too many scrypt checks are running and waiting already.
   */
  async find(presented: string): Promise<E | undefined> {
    const sha = sha256Hex(presented);
    const direct = this.#bySha.get(sha) ?? this.#matched.get(sha);
    if (direct) return direct;
    for (const id of this.idsNamedBy(presented)) {
      const key = presented.slice(id.length + 1);
      const bySha = this.#bySha.get(sha256Hex(key));
      if (bySha?.id === id) return bySha;
      for (const s of this.#scryptById.get(id) ?? []) {
        const out = await this.#scryptRuns.run(() => scryptAsync(key, s.salt, s.hash.length, s.N, s.r, s.p));
        if (out.length === s.hash.length && timingSafeEqual(out, s.hash)) {
          if (this.#matched.size < 10_000) this.#matched.set(sha, s.entry);
          return s.entry;
        }
      }
    }
    return undefined;
  }
}
