import assert from "node:assert/strict";
import { CertificateError, readCertificateFiles } from "./certificate_files.ts";
import { selfSignedCertificate } from "./test_certificates.ts";

Deno.test("tls files: a matching certificate and key are read and described", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await selfSignedCertificate(dir, "a", "bridge-a");
    const m = await readCertificateFiles(a);
    assert.match(m.subject, /CN=bridge-a/);
    assert.match(m.fingerprint256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.equal(m.cert, await Deno.readTextFile(a.certFile));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls files: each bad file is named in a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = await selfSignedCertificate(dir, "a", "bridge-a");
    const b = await selfSignedCertificate(dir, "b", "bridge-b");
    const fails = async (files: { certFile: string; keyFile: string }, pattern: RegExp) => {
      await assert.rejects(() => readCertificateFiles(files), (e: Error) => {
        assert.ok(e instanceof CertificateError, String(e));
        assert.match(e.message, pattern);
        return true;
      });
    };
    await fails(
      { certFile: `${dir}/nope.crt`, keyFile: a.keyFile },
      /cannot read the TLS certificate .*nope\.crt/,
    );
    await fails({ certFile: a.certFile, keyFile: `${dir}/nope.key` }, /cannot read the TLS key .*nope\.key/);
    await fails({ certFile: a.keyFile, keyFile: a.keyFile }, /a\.key holds no PEM certificate/);
    await fails({ certFile: a.certFile, keyFile: a.certFile }, /a\.crt holds no unencrypted PEM private key/);
    await fails(
      { certFile: a.certFile, keyFile: b.keyFile },
      /the key in .*b\.key does not belong to .*a\.crt/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
