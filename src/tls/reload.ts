/**
 * Re-reads the bridge's certificate on SIGHUP (`systemctl kill -s HUP`, or a certbot deploy hook)
 * and hands it to the server. Open connections keep the session they negotiated; a file that is missing,
 * unreadable or does not match its key is logged and the old certificate goes on serving.
 */
import type { Logger } from "../observability/logger.ts";
import {
  type CertificateFiles,
  type CertificateMaterial,
  readCertificateFiles,
} from "./certificate_files.ts";

/**
 * Calls `apply` with each good reload; returns a function that stops listening. Without `files`
 * (no TLS) a SIGHUP is only logged: it must not stop the bridge, as its default action would.
 */
export function reloadCertificateOnSighup(
  files: CertificateFiles | undefined,
  apply: (material: CertificateMaterial) => void,
  log: Logger,
): () => void {
  // Windows has no SIGHUP; there a restart is how a certificate is replaced.
  if (Deno.build.os === "windows") return () => {};
  let running = Promise.resolve();
  const onHup = () => {
    if (!files) return log.info("SIGHUP: no TLS certificate to reload (server.tls is not set)");
    // One reload at a time, in the order the signals came, so the last file written wins.
    running = running.then(async () => {
      try {
        const material = await readCertificateFiles(files);
        apply(material);
        log.info(
          { subject: material.subject, fingerprint256: material.fingerprint256, validTo: material.validTo },
          "TLS certificate reloaded",
        );
      } catch (e) {
        log.error({ err: (e as Error).message }, "TLS certificate reload failed; still serving the old one");
      }
    });
  };
  Deno.addSignalListener("SIGHUP", onHup);
  return () => Deno.removeSignalListener("SIGHUP", onHup);
}
