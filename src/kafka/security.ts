/**
 * TLS and SASL toward the brokers, resolved from config: the PEM files and the password file are read
 * once at start, so a missing or unreadable file stops the start with its name rather than surfacing
 * later as a vague connection error.
 */
import type { Config } from "../config/schema.ts";

export interface KafkaTls {
  /** PEM CA bundle; absent: the system's trusted CAs. */
  ca?: string;
  /** Client certificate (chain) and key, PEM. */
  cert?: string;
  key?: string;
}

export interface KafkaSasl {
  mechanism: "plain" | "scram-sha-256" | "scram-sha-512";
  username: string;
  password: string;
}

export interface KafkaSecurity {
  tls?: KafkaTls;
  sasl?: KafkaSasl;
}

/** Every problem with the files at once, each naming its key and file. */
export class KafkaSecurityError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("; "));
    this.name = "KafkaSecurityError";
  }
}

/** Reads each file; a problem is recorded in `problems` and yields undefined. */
class FileReader {
  readonly problems: string[] = [];

  async read(path: string, key: string, expect?: RegExp, what?: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      this.problems.push(`${key}: cannot read ${path}: ${(e as Error).message}`);
      return undefined;
    }
    if (expect && !expect.test(text)) {
      this.problems.push(`${key}: ${path} holds no ${what}`);
      return undefined;
    }
    return text;
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----/;
const PEM_KEY = /-----BEGIN (RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

export async function readKafkaSecurity(kafka: Config["kafka"]): Promise<KafkaSecurity> {
  const out: KafkaSecurity = {};
  const files = new FileReader();
  const { tls, sasl } = kafka;
  if (tls.enabled) {
    out.tls = {};
    if (tls.caFile) {
      out.tls.ca = await files.read(tls.caFile, "kafka.tls.caFile", PEM_CERT, "PEM certificate");
    }
    if (tls.certFile && tls.keyFile) {
      out.tls.cert = await files.read(tls.certFile, "kafka.tls.certFile", PEM_CERT, "PEM certificate");
      out.tls.key = await files.read(tls.keyFile, "kafka.tls.keyFile", PEM_KEY, "PEM private key");
    }
  }
  if (sasl.mechanism !== "none") {
    // A password file usually ends with a newline that is not part of the password.
    const password = sasl.passwordFile
      ? (await files.read(sasl.passwordFile, "kafka.sasl.passwordFile"))?.replace(/\r?\n$/, "")
      : sasl.password;
    if (password === "") files.problems.push(`kafka.sasl.passwordFile: ${sasl.passwordFile} is empty`);
    if (password) out.sasl = { mechanism: sasl.mechanism, username: sasl.username!, password };
  }
  if (files.problems.length) throw new KafkaSecurityError(files.problems);
  return out;
}
