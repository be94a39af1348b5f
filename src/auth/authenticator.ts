/**
 * Turns what a connection presents (a token, or nothing) into a Principal, by the
 * `auth` config: JWTs, hashed API keys, and anonymous access where allowed.
 */
import type { Config } from "../config/schema.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { type ApiKeyEntry, ApiKeyStore } from "./api_keys.ts";
import { JwtVerifier } from "./jwt.ts";
import { Permissions, type PermissionSpec } from "./permissions.ts";
import { type AuthOutcome, isLoopbackHost, type Principal } from "./principal.ts";

type KeyEntry = ApiKeyEntry & PermissionSpec;

/** A JWT is three base64url parts; anything else presented is taken for an API key. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_CHARS = 16_384;

export class Authenticator {
  readonly #anonymous?: Principal;
  readonly #keys: ApiKeyStore<KeyEntry>;
  readonly #keyPermissions = new Map<KeyEntry, Permissions>();

  constructor(
    readonly config: Config["auth"],
    serverHost: string,
    readonly jwt: JwtVerifier | undefined,
  ) {
    const anonymous = config.anonymous === "enabled" ||
      (config.anonymous === "loopback" && isLoopbackHost(serverHost));
    if (anonymous) {
      this.#anonymous = {
        id: "anonymous",
        kind: "anonymous",
        permissions: new Permissions(config.anonymousPermissions),
      };
    }
    this.#keys = new ApiKeyStore(config.apiKeys);
    for (const k of config.apiKeys) this.#keyPermissions.set(k, new Permissions(k));
  }

  /** Reads the key files the config names. */
  static async fromConfig(config: Config): Promise<Authenticator> {
    const j = config.auth.jwt;
    const needsJwt = j.secretFile || j.publicKeyFiles.length > 0 || j.jwksUrl;
    const read = async (path: string, what: string) => {
      try {
        return await Deno.readTextFile(path);
      } catch (e) {
        throw new Error(`cannot read ${what} ${path}: ${(e as Error).message}`);
      }
    };
    const jwt = needsJwt
      ? await JwtVerifier.create({
        algorithms: j.algorithms,
        secret: j.secretFile
          ? new TextEncoder().encode((await read(j.secretFile, "auth.jwt.secretFile")).trim())
          : undefined,
        publicKeys: await Promise.all(j.publicKeyFiles.map((f) => read(f, "auth.jwt.publicKeyFiles entry"))),
        jwksUrl: j.jwksUrl,
        jwksCacheMs: j.jwksCacheMs,
        issuer: j.issuer,
        audience: j.audience,
        clockToleranceSec: j.clockToleranceSec,
        permissionsClaim: j.permissionsClaim,
      })
      : undefined;
    return new Authenticator(config.auth, config.server.host, jwt);
  }

  /** The principal of a connection that presents no token, when anonymous access is allowed. */
  get anonymous(): Principal | undefined {
    return this.#anonymous;
  }

  /** Whether a connection must present a token. */
  get required(): boolean {
    return this.#anonymous === undefined;
  }

  async authenticate(token: string): Promise<AuthOutcome> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) {
      return {
        ok: false,
        code: ErrorCode.AUTH_INVALID,
        message: `a token must be 1 to ${MAX_TOKEN_CHARS} characters`,
      };
    }
    if (JWT_SHAPE.test(token)) {
      if (!this.jwt) {
        return { ok: false, code: ErrorCode.AUTH_INVALID, message: "JWTs are not accepted here" };
      }
      return await this.jwt.verify(token);
    }
    const entry = await this.#keys.find(token);
    if (!entry) return { ok: false, code: ErrorCode.AUTH_INVALID, message: "unknown API key" };
    if (entry.revoked) {
      return { ok: false, code: ErrorCode.AUTH_REVOKED, message: `API key "${entry.id}" has been revoked` };
    }
    return {
      ok: true,
      principal: { id: entry.id, kind: "api-key", permissions: this.#keyPermissions.get(entry)! },
    };
  }
}
