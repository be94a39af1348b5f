/**
 * TLS toward clients, against a real bridge process and Kafka: a wss:// round trip and https:// routes
 * with a self-signed certificate made by openssl at test time, then the certificate files are replaced
 * and SIGHUP sent: a new connection sees the new certificate while the old connection keeps working.
 * The clients are node:tls and npm:ws, which take a CA per connection (Deno's WebSocket does not).
 */
import assert from "node:assert/strict";
import { get } from "node:https";
import { connect as tlsConnect } from "node:tls";
// @ts-types="npm:@types/ws@8.18.1"
import { WebSocket as NodeWebSocket } from "ws";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, recordsByPosition } from "./helpers/kcat.ts";
import { until } from "./helpers/wait.ts";
import { TestClient } from "./helpers/ws_client.ts";
import { selfSignedCertificate } from "../src/tls/test_certificates.ts";

/** The fingerprint of the certificate the server presents, verified against `ca` (rejects otherwise). */
function servedFingerprint(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: "127.0.0.1", port, ca, servername: "localhost" }, () => {
      resolve(s.getPeerCertificate().fingerprint256);
      s.end();
    });
    s.on("error", reject);
  });
}

async function wssClient(port: number, ca: string): Promise<TestClient> {
  const url = `wss://127.0.0.1:${port}/ws`;
  const socket = new NodeWebSocket(url, { ca });
  return await TestClient.connect(url, socket as unknown as WebSocket);
}

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { ca }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

Deno.test({
  name: "tls: wss round trip, then a certificate reloaded on SIGHUP while a connection stays open",
  // npm:ws and node:tls keep handles of their own between calls.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "edge-bridge-tls-" });
    const topic = uniqueTopic("tls");
    await createTopics([{ name: topic, partitions: 1 }]);
    const a = await selfSignedCertificate(dir, "a", "bridge-a");
    const b = await selfSignedCertificate(dir, "b", "bridge-b");
    const [caA, caB] = [await Deno.readTextFile(a.certFile), await Deno.readTextFile(b.certFile)];
    const served = { certFile: `${dir}/served.crt`, keyFile: `${dir}/served.key` };
    await Deno.copyFile(a.certFile, served.certFile);
    await Deno.copyFile(a.keyFile, served.keyFile);
    const bridge = await BridgeProcess.start({
      set: [`server.tls.certFile=${served.certFile}`, `server.tls.keyFile=${served.keyFile}`],
    });
    const clients: TestClient[] = [];
    try {
      assert.match(String(bridge.logs("listening")[0].url), /^wss:\/\/127\.0\.0\.1:\d+\/ws$/);
      const fpA = await servedFingerprint(bridge.port, caA);

      // https:// routes and a wss:// round trip with certificate A.
      const health = await httpsGet(`https://127.0.0.1:${bridge.port}/healthz`, caA);
      assert.deepEqual([health.status, JSON.parse(health.body)], [200, { status: "ok" }]);
      const old = await wssClient(bridge.port, caA);
      clients.push(old);
      assert.equal(old.welcome?.op, "welcome");
      const first = await old.publish(topic, "over wss with certificate A");
      assert.equal(first.op, "ack", JSON.stringify(first));

      // Replace the files and SIGHUP: new connections get B.
      await Deno.copyFile(b.certFile, served.certFile);
      await Deno.copyFile(b.keyFile, served.keyFile);
      bridge.signal("SIGHUP");
      await until(
        "the reload to be logged",
        () => bridge.logs("TLS certificate reloaded").length === 1,
        10_000,
      );
      const reloaded = bridge.logs("TLS certificate reloaded")[0];
      assert.match(String(reloaded.subject), /CN=bridge-b/);
      const fpB = await servedFingerprint(bridge.port, caB);
      assert.notEqual(fpB, fpA);
      assert.equal(reloaded.fingerprint256, fpB);
      await assert.rejects(() => servedFingerprint(bridge.port, caA), "a client trusting only A refuses B");
      const fresh = await wssClient(bridge.port, caB);
      clients.push(fresh);
      const second = await fresh.publish(topic, "over wss with certificate B");
      assert.equal(second.op, "ack", JSON.stringify(second));

      // The connection opened under A was not dropped and still works both ways.
      const sub = await old.subscribe(topic, { from: "earliest", credit: 10 });
      const third = await old.publish(topic, "the old connection after the reload");
      assert.equal(third.op, "ack", JSON.stringify(third));
      await old.waitForCount((f) => f.op === "message" && f.sub === sub.sub, 3);
      assert.deepEqual(old.messages(sub.sub).map((m) => m.value), [
        "over wss with certificate A",
        "over wss with certificate B",
        "the old connection after the reload",
      ]);

      // A bad file on reload is logged and the bridge keeps serving B.
      await Deno.writeTextFile(served.keyFile, "not a key\n");
      bridge.signal("SIGHUP");
      await until("the failed reload to be logged", () => bridge.logs(/reload failed/).length === 1, 10_000);
      assert.match(
        String(bridge.logs(/reload failed/)[0].err),
        /served\.key holds no unencrypted PEM private key/,
      );
      assert.equal(await servedFingerprint(bridge.port, caB), fpB);

      const at = recordsByPosition(await kcatRead(topic, undefined, 3));
      for (const ack of [first, second, third]) assert.ok(at(ack.partition, ack.offset), JSON.stringify(ack));
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await bridge.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("tls: a certificate file that cannot be used stops the start with its name (exit 2)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edge-bridge-tls-" });
  try {
    const a = await selfSignedCertificate(dir, "a", "bridge-a");
    const b = await selfSignedCertificate(dir, "b", "bridge-b");
    await assert.rejects(
      () =>
        BridgeProcess.start({
          set: [`server.tls.certFile=${a.certFile}`, `server.tls.keyFile=${b.keyFile}`],
        }),
      (e: Error) => {
        assert.match(e.message, /exited \(code 2\)/);
        assert.match(
          e.message,
          /server\.tls: the key in .*b\.key does not belong to the certificate in .*a\.crt/,
        );
        return true;
      },
    );
    await assert.rejects(
      () => BridgeProcess.start({ set: [`server.tls.certFile=${a.certFile}`] }),
      /server\.tls\.keyFile = undefined .*TLS needs both certFile and keyFile/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tls: without TLS a SIGHUP is logged and the bridge goes on serving", async () => {
  const bridge = await BridgeProcess.start();
  try {
    bridge.signal("SIGHUP");
    await until(
      "the SIGHUP to be logged",
      () => bridge.logs(/^SIGHUP: no TLS certificate/).length === 1,
      10_000,
    );
    const c = await bridge.connect();
    assert.equal(c.welcome?.op, "welcome");
    await c.close();
  } finally {
    assert.equal(await bridge.stop(), 0, "a clean exit at SIGTERM: SIGHUP did not stop it first");
  }
});
