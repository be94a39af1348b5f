/**
 * JWT verification with npm:jose: HS256 with a shared secret, RS256/ES256/EdDSA with PEM
 * public keys or a JWKS URL (jose caches its keys and fetches again for an unknown `kid`).
 * Every failure maps onto one protocol code, so a client learns whether to fix its token
 * (AUTH_INVALID, AUTH_CLAIMS), get a new one (AUTH_EXPIRED), or retry (AUTH_UNAVAILABLE).
 */
import { createPublicKey } from "node:crypto";
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  importSPKI,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { ANONYMOUS_ID, ErrorCode } from "../protocol/mod.ts";
import { parsePermissionsClaim, Permissions } from "./permissions.ts";
import type { AuthOutcome } from "./principal.ts";

export type JwtAlgorithm = "HS256" | "RS256" | "ES256" | "EdDSA";

export interface JwtOptions {
  algorithms: JwtAlgorithm[];
  /** HS256 secret. */
  secret?: Uint8Array;
  /** PEM (SPKI) public keys. */
  publicKeys: string[];
  jwksUrl?: string;
  jwksCacheMs: number;
  /**
   * The least time between two fetches of the JWKS for a token with an unknown `kid` (default: 30 s,
   * or jwksCacheMs if shorter): tokens naming made-up kids must not make the bridge hammer the endpoint.
   */
  jwksRefetchCooldownMs?: number;
  issuer?: string;
  audience?: string;
  clockToleranceSec: number;
  permissionsClaim: string;
}

type VerifyKey = Awaited<ReturnType<typeof importSPKI>> | Uint8Array;

/** Which algorithm a PEM public key is for, from its type (and curve). */
function algorithmOf(pem: string): Exclude<JwtAlgorithm, "HS256"> {
  const key = createPublicKey(pem);
  const type = key.asymmetricKeyType;
  if (type === "rsa") return "RS256";
  if (type === "ed25519") return "EdDSA";
  if (type === "ec" && key.asymmetricKeyDetails?.namedCurve === "prime256v1") return "ES256";
  throw new Error(`unsupported public key type ${type} (use RSA, EC P-256 or Ed25519)`);
}

const SUBJECT_RE = /^[\x21-\x7e]{1,200}$/;

export class JwtVerifier {
  readonly #keys = new Map<JwtAlgorithm, VerifyKey[]>();
  readonly #jwks?: JWTVerifyGetKey;

  private constructor(readonly opts: JwtOptions) {
    if (opts.jwksUrl) {
      this.#jwks = createRemoteJWKSet(new URL(opts.jwksUrl), {
        cacheMaxAge: opts.jwksCacheMs,
        cooldownDuration: opts.jwksRefetchCooldownMs ?? Math.min(30_000, opts.jwksCacheMs),
        timeoutDuration: 5_000,
      });
    }
  }

  static async create(opts: JwtOptions): Promise<JwtVerifier> {
    const v = new JwtVerifier(opts);
    if (opts.secret) {
      if (opts.secret.length < 32) throw new Error("the HS256 secret must be at least 32 bytes");
      v.#keys.set("HS256", [opts.secret]);
    }
    for (const pem of opts.publicKeys) {
      const alg = algorithmOf(pem);
      const list = v.#keys.get(alg) ?? [];
      list.push(await importSPKI(pem, alg));
      v.#keys.set(alg, list);
    }
    return v;
  }

  /** Whether any key source is configured (else every token is refused). */
  get configured(): boolean {
    return this.#keys.size > 0 || this.#jwks !== undefined;
  }

  async verify(token: string): Promise<AuthOutcome> {
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return invalid("the token is neither a JWT nor a known API key");
    }
    if (!alg || !(this.opts.algorithms as string[]).includes(alg)) {
      return invalid(`JWT algorithm ${alg ?? "(none)"} is not accepted here`);
    }
    const candidates: (VerifyKey | JWTVerifyGetKey)[] = [...this.#keys.get(alg as JwtAlgorithm) ?? []];
    if (this.#jwks && alg !== "HS256") candidates.push(this.#jwks);
    if (candidates.length === 0) return invalid(`no key is configured for JWT algorithm ${alg}`);
    let last: unknown;
    for (const key of candidates) {
      try {
        const { payload } = await jwtVerify(token, key as VerifyKey, {
          algorithms: this.opts.algorithms,
          issuer: this.opts.issuer,
          audience: this.opts.audience,
          clockTolerance: this.opts.clockToleranceSec,
          requiredClaims: ["sub", "exp"],
        });
        return this.#principal(payload);
      } catch (e) {
        last = e;
        // A signature that fails with one key may be good with the next; anything else is final.
        if ((e as { code?: string }).code !== "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") break;
      }
    }
    return refusal(last);
  }

  #principal(payload: JWTPayload): AuthOutcome {
    const sub: unknown = payload.sub;
    // jose only checks that `sub` is present; a number or an object must not become an id.
    if (typeof sub !== "string" || !SUBJECT_RE.test(sub)) {
      return {
        ok: false,
        code: ErrorCode.AUTH_CLAIMS,
        message: `"sub" must be a string of 1 to 200 printable characters`,
      };
    }
    if (sub === ANONYMOUS_ID) {
      // The anonymous connections' namespace: a token named so would share their groups and clientIds.
      return {
        ok: false,
        code: ErrorCode.AUTH_CLAIMS,
        message: `"sub" may not be "${ANONYMOUS_ID}" (reserved)`,
      };
    }
    const spec = parsePermissionsClaim(payload[this.opts.permissionsClaim]);
    if (typeof spec === "string") {
      return {
        ok: false,
        code: ErrorCode.AUTH_CLAIMS,
        message: `claim "${this.opts.permissionsClaim}" ${spec}`,
      };
    }
    return {
      ok: true,
      principal: { id: sub, kind: "jwt", permissions: new Permissions(spec), expiresAt: payload.exp! * 1000 },
    };
  }
}

function invalid(message: string): AuthOutcome {
  return { ok: false, code: ErrorCode.AUTH_INVALID, message };
}

/** jose's error codes onto ours; the message never repeats the token. */
function refusal(e: unknown): AuthOutcome {
  const code = (e as { code?: string })?.code;
  const detail = (e as Error)?.message ?? String(e);
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return { ok: false, code: ErrorCode.AUTH_EXPIRED, message: "the token has expired" };
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      return { ok: false, code: ErrorCode.AUTH_CLAIMS, message: `the token's claims are refused: ${detail}` };
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return invalid("the token's signature does not verify with any configured key");
    case "ERR_JWKS_NO_MATCHING_KEY":
    case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
      return invalid("no key of the JWKS matches the token");
    case "ERR_JWKS_TIMEOUT":
      return {
        ok: false,
        code: ErrorCode.AUTH_UNAVAILABLE,
        message: "the JWKS endpoint did not answer in time",
      };
    case "ERR_JWKS_INVALID":
    case "ERR_JOSE_GENERIC":
      return { ok: false, code: ErrorCode.AUTH_UNAVAILABLE, message: `cannot use the JWKS: ${detail}` };
    case undefined:
      // Not a jose error: fetching the JWKS failed (network), which the client can retry.
      return { ok: false, code: ErrorCode.AUTH_UNAVAILABLE, message: `cannot fetch the JWKS: ${detail}` };
    default:
      return invalid(`the token is malformed: ${detail}`);
  }
}
