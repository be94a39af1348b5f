/**
 * Test support: a fresh self-signed certificate made with openssl at test time (no key is ever kept in
 * the repository). Used by unit tests here and by the integration tests in tests/.
 */

export interface TestCertificate {
  certFile: string;
  keyFile: string;
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A P-256 certificate for 127.0.0.1 and localhost, valid one day, as `<dir>/<name>.crt` and `.key`. */
export async function selfSignedCertificate(dir: string, name: string, cn: string): Promise<TestCertificate> {
  const certFile = `${dir}/${name}.crt`;
  const keyFile = `${dir}/${name}.key`;
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  return { certFile, keyFile };
}
