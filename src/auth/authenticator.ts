/**
 * Turns what a connection presents (a token, or nothing) into a Principal, by the
 * `auth` config: JWTs, hashed API keys, and anonymous access where allowed. It also
 * refuses, unchecked, tokens from an address that failed too often (auth.maxFailuresPerIp).
 */
import type { Config } from "../config/schema.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { addressBlock } from "../limits/address.ts";
import { AuthFailures } from "../limits/auth_failures.ts";
import { BoundedConcurrency, Busy } from "../limits/concurrency.ts";
import { type ApiKeyEntry, ApiKeyStore } from "./api_keys.ts";
import { JwtVerifier } from "./jwt.ts";
import { isLocalPeer, type Peer } from "./peer.ts";
import { Permissions, type PermissionSpec } from "./permissions.ts";
import { isLoopbackHost } from "../util/ip.ts";
import type { AuthOutcome, Principal } from "./principal.ts";

type KeyEntry = ApiKeyEntry & PermissionSpec;

/** A JWT is three base64url parts; anything else presented is taken for an API key. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_CHARS = 16_384;

export class Authenticator {
  readonly #anonymous?: Principal;
  /** Anonymous only for connections from this machine, not through a proxy ("loopback"). */
  readonly #anonymousLocalOnly: boolean;
  readonly #keys: ApiKeyStore<KeyEntry>;
  readonly #keyPermissions = new Map<KeyEntry, Permissions>();
  readonly #failures: AuthFailures;

  /** `countLoopback`: limits.countLoopback (loopback addresses' failures are counted too). */
  constructor(
    readonly config: Config["auth"],
    serverHost: string,
    readonly jwt: JwtVerifier | undefined,
    countLoopback = false,
  ) {
    const anonymous = config.anonymous === "enabled" ||
      (config.anonymous === "loopback" && isLoopbackHost(serverHost));
    this.#anonymousLocalOnly = config.anonymous === "loopback";
    if (anonymous) {
      this.#anonymous = {
        id: "anonymous",
        kind: "anonymous",
        permissions: new Permissions(config.anonymousPermissions),
      };
    }
    this.#keys = new ApiKeyStore(
      config.apiKeys,
      new BoundedConcurrency(config.maxConcurrentKeyHashes, config.maxQueuedKeyHashes),
    );
    for (const k of config.apiKeys) this.#keyPermissions.set(k, new Permissions(k));
    this.#failures = new AuthFailures(config.maxFailuresPerIp, config.failureWindowMs, countLoopback);
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
    return new Authenticator(config.auth, config.server.host, jwt, config.limits.countLoopback);
  }

  /**
   * The principal of a connection that presents no token, when anonymous access is allowed for it.
   * "loopback" allows it only to a connection from this machine that did not come through a
   * proxy: a TLS proxy in front connects from 127.0.0.1 on behalf of the whole internet.
   */
  anonymousFor(peer: Peer): Principal | undefined {
    if (this.#anonymousLocalOnly && !isLocalPeer(peer)) return undefined;
    return this.#anonymous;
  }

  /** Whether every connection must present a token. */
  get required(): boolean {
    return this.#anonymous === undefined;
  }

  /**
   * Why the config deserves a warning at start: anonymous connections may get a bare `*`
   * permission. Undefined when they cannot, or get less.
   */
  get anonymousWarning(): string | undefined {
    if (!this.#anonymous) return undefined;
    const wide = Object.entries(this.config.anonymousPermissions)
      .filter(([, globs]) => globs.includes("*"))
      .map(([what]) => what);
    if (wide.length === 0) return undefined;
    const who = this.#anonymousLocalOnly
      ? "connections from this host without a token (auth.anonymous: loopback)"
      : "every connection without a token (auth.anonymous: enabled)";
    return `${who} may ${wide.join(", ")} on "*"; behind a proxy that does not add X-Forwarded-For, ` +
      "Forwarded or X-Real-IP that means every client: set auth.anonymous: disabled there, or narrow " +
      "auth.anonymousPermissions";
  }

  /**
   * Checks a token from `peer`. Refuses it unchecked (AUTH_RATE_LIMITED) while the peer's address
   * has failed too often, and counts each failure; without a peer nothing is counted.
   */
  async authenticate(token: string, peer?: Peer): Promise<AuthOutcome> {
    const address = peer?.limitAddress;
    const waitMs = address === undefined ? 0 : this.#failures.waitMs(address);
    if (waitMs > 0 && address !== undefined) {
      const seconds = Math.ceil(waitMs / 1000);
      return {
        ok: false,
        code: ErrorCode.AUTH_RATE_LIMITED,
        message: `too many failed authentications from ${addressBlock(address)}; try again in ${seconds} s`,
      };
    }
    const outcome = await this.#check(token);
    // Failing to check (AUTH_UNAVAILABLE) is the bridge's doing, not the client's.
    if (!outcome.ok && outcome.code !== ErrorCode.AUTH_UNAVAILABLE && address !== undefined) {
      this.#failures.failed(address);
    }
    return outcome;
  }

  async #check(token: string): Promise<AuthOutcome> {
    if (token.length === 0 || token.length > MAX_TOKEN_CHARS) {
      return {
        ok: false,
        code: ErrorCode.AUTH_INVALID,
        message: `a token must be 1 to ${MAX_TOKEN_CHARS} characters`,
      };
    }
    // "<id>.<key>" may look like a JWT when the id holds dots; a configured id decides.
    if (JWT_SHAPE.test(token) && this.#keys.idsNamedBy(token).length === 0) {
      if (!this.jwt) {
        return { ok: false, code: ErrorCode.AUTH_INVALID, message: "JWTs are not accepted here" };
      }
      return await this.jwt.verify(token);
    }
    let entry: KeyEntry | undefined;
    try {
      entry = await this.#keys.find(token);
    } catch (e) {
      if (!(e instanceof Busy)) throw e;
      return {
        ok: false,
        code: ErrorCode.AUTH_UNAVAILABLE,
        message: "too many API keys are being checked at once; try again shortly",
      };
    }
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
