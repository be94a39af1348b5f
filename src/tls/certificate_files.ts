/**
 * Reads a PEM certificate (chain) and its private key from files and checks them before use, so a bad
 * file is reported by name at start, and a bad file on reload leaves the old certificate serving.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** What node:tls takes, with a description of the certificate for the log. */
export interface CertificateMaterial {
  cert: string;
  key: string;
  subject: string;
  fingerprint256: string;
  validTo: string;
}

export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CertificateError";
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new CertificateError(`cannot read the TLS ${what} ${path}: ${(e as Error).message}`);
  }
}

export async function readCertificateFiles(files: CertificateFiles): Promise<CertificateMaterial> {
  const [cert, key] = await Promise.all([
    readText(files.certFile, "certificate"),
    readText(files.keyFile, "key"),
  ]);
  let x509: X509Certificate;
  try {
    // The first certificate of the file is the server's; any others are its chain.
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new CertificateError(
      `${files.certFile} holds no PEM certificate: ${(e as Error).message}`,
    );
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new CertificateError(
      `${files.keyFile} holds no unencrypted PEM private key: ${(e as Error).message}`,
    );
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateError(
      `the key in ${files.keyFile} does not belong to the certificate in ${files.certFile}`,
    );
  }
  return {
    cert,
    key,
    subject: x509.subject.replaceAll("\n", ", "),
    fingerprint256: x509.fingerprint256,
    validTo: x509.validTo,
  };
}
