/**
 * Static API keys. The config holds only a hash of each key: sha256 (fast; fine for keys
 * with 256 random bits, as `generateApiKey` makes) or scrypt (salted and slow, for keys
 * that people chose). A key is compared in constant time.
 */
import { Buffer } from "node:buffer";
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

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

/** Finds the configured key a presented key matches. */
export class ApiKeyStore<E extends ApiKeyEntry> {
  readonly #bySha = new Map<string, E>();
  readonly #scrypt: ScryptEntry<E>[] = [];
  /** Keys already matched against a scrypt hash (by their sha256), so a reconnect costs no scrypt run. */
  readonly #matched = new Map<string, E>();

  constructor(entries: readonly E[]) {
    for (const entry of entries) {
      if (entry.hash.startsWith("sha256:")) {
        this.#bySha.set(entry.hash.slice("sha256:".length), entry);
        continue;
      }
      const [, N, r, p, salt, hash] = entry.hash.split(":");
      this.#scrypt.push({
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
    return this.#bySha.size + this.#scrypt.length;
  }

  async find(key: string): Promise<E | undefined> {
    const sha = sha256Hex(key);
    const direct = this.#bySha.get(sha) ?? this.#matched.get(sha);
    if (direct) return direct;
    for (const s of this.#scrypt) {
      const out = await scryptAsync(key, s.salt, s.hash.length, s.N, s.r, s.p);
      if (out.length === s.hash.length && timingSafeEqual(out, s.hash)) {
        if (this.#matched.size < 10_000) this.#matched.set(sha, s.entry);
        return s.entry;
      }
    }
    return undefined;
  }
}
