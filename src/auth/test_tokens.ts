/** Keys and tokens for tests: made fresh at test time, never committed. */
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from "jose";

export type TestAlgorithm = "HS256" | "RS256" | "ES256" | "EdDSA";

export interface TestSigner {
  alg: TestAlgorithm;
  /** PEM public key (asymmetric algorithms). */
  publicPem?: string;
  /** HS256 secret as it would sit in a file. */
  secret?: string;
  /** The public key as a JWK (for a JWKS). */
  sign(
    claims: JWTPayload,
    opts?: { expiresIn?: string | number; audience?: string; kid?: string },
  ): Promise<string>;
}

export async function testSigner(
  alg: TestAlgorithm,
): Promise<TestSigner & { jwk?: Awaited<ReturnType<typeof exportJWK>> }> {
  if (alg === "HS256") {
    const secret = crypto.randomUUID() + crypto.randomUUID();
    const key = new TextEncoder().encode(secret);
    return { alg, secret, sign: (claims, opts) => sign(claims, alg, key, opts) };
  }
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    alg,
    publicPem: await exportSPKI(publicKey),
    jwk,
    sign: (claims, opts) => sign(claims, alg, privateKey, opts),
  };
}

function sign(
  claims: JWTPayload,
  alg: TestAlgorithm,
  key: Parameters<SignJWT["sign"]>[0],
  opts: { expiresIn?: string | number; audience?: string; kid?: string } = {},
): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg, ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuedAt();
  if (opts.expiresIn !== undefined) jwt.setExpirationTime(opts.expiresIn);
  if (opts.audience !== undefined) jwt.setAudience(opts.audience);
  return jwt.sign(key);
}
