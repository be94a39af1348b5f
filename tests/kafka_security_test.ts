/**
 * The bridge against a Kafka listener that wants TLS with a client certificate and SASL (scripts/kafka.sh
 * --sasl-ssl-port): a broker of the test's own, so the shared plaintext one is never touched. Records go in
 * and out through the bridge over SASL_SSL; kcat reads them back over the broker's plaintext listener.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead, recordsByPosition } from "./helpers/kcat.ts";
import { until } from "./helpers/wait.ts";

const PORT = Number(Deno.env.get("SECURE_KAFKA_PORT") ?? 19692);
const SASL_SSL_PORT = PORT + 2;
const USER = "edge-bridge";
const PASSWORD = "edge-bridge-secret";

function tlsSettings(broker: OwnBroker): string[] {
  return [
    "kafka.tls.enabled=true",
    `kafka.tls.caFile=${broker.tlsDir}/ca.crt`,
    `kafka.tls.certFile=${broker.tlsDir}/client.crt`,
    `kafka.tls.keyFile=${broker.tlsDir}/client.key`,
    `kafka.sasl.username=${USER}`,
  ];
}

async function readyz(bridge: BridgeProcess): Promise<{ ready: boolean; kafka: string }> {
  const r = await fetch(`${bridge.httpUrl}/readyz`);
  return await r.json();
}

Deno.test({
  name: "kafka security: publish and subscribe over SASL_SSL with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async (t) => {
    const broker = new OwnBroker(PORT, [], SASL_SSL_PORT);
    await broker.start();
    const dir = await Deno.makeTempDir({ prefix: "edge-bridge-kafka-sasl-" });
    try {
      const topic = uniqueTopic("sasl");
      await createTopics([{ name: topic, partitions: 2 }], broker.address);
      const passwordFile = `${dir}/password`;
      await Deno.writeTextFile(passwordFile, `${PASSWORD}\n`);
      const cases: { mechanism: string; password: string[]; env?: Record<string, string> }[] = [
        { mechanism: "scram-sha-512", password: [`kafka.sasl.passwordFile=${passwordFile}`] },
        { mechanism: "scram-sha-256", password: [], env: { EDGE_BRIDGE_KAFKA_SASL_PASSWORD: PASSWORD } },
        { mechanism: "plain", password: [`kafka.sasl.passwordFile=${passwordFile}`] },
      ];
      const acks: { partition: number; offset: string; value: string }[] = [];
      for (const c of cases) {
        await t.step(c.mechanism, async () => {
          const bridge = await BridgeProcess.start({
            brokers: `127.0.0.1:${SASL_SSL_PORT}`,
            set: [...tlsSettings(broker), `kafka.sasl.mechanism=${c.mechanism}`, ...c.password],
            env: c.env,
          });
          try {
            assert.equal((await readyz(bridge)).kafka, "up");
            const client = await bridge.connect();
            const sub = await client.subscribe(topic, { from: "earliest", credit: 100 });
            const value = `over SASL_SSL with ${c.mechanism}`;
            const ack = await client.publish(topic, value, { key: c.mechanism });
            assert.equal(ack.op, "ack", JSON.stringify(ack));
            acks.push({ partition: ack.partition, offset: ack.offset, value });
            // Read back through the bridge's consumer over the same listener: every record so far.
            await client.waitForCount((f) => f.op === "message" && f.sub === sub.sub, acks.length);
            assert.deepEqual(
              client.messages(sub.sub).map((m) => m.value).sort(),
              acks.map((a) => a.value).sort(),
            );
            await client.close();
          } finally {
            assert.equal(await bridge.stop(), 0);
          }
        });
      }
      // kcat over the plaintext listener: Kafka holds each acked record where the ack said.
      const at = recordsByPosition(await kcatRead(topic, broker.address, acks.length));
      for (const a of acks) assert.equal(at(a.partition, a.offset)?.payload, a.value);

      await t.step(
        "a wrong password: Kafka is down for the bridge, publishes are refused as unavailable",
        async () => {
          const bridge = await BridgeProcess.start({
            brokers: `127.0.0.1:${SASL_SSL_PORT}`,
            set: [...tlsSettings(broker), "kafka.sasl.mechanism=scram-sha-512", "kafka.sasl.password=wrong"],
          });
          try {
            const r = await readyz(bridge);
            assert.equal(r.ready, false);
            assert.match(r.kafka, /^down: .*(SASL|[Aa]uthentication)/);
            const client = await bridge.connect();
            const nack = await client.publish(topic, "never written");
            assert.equal(nack.code, "KAFKA_UNAVAILABLE", JSON.stringify(nack));
            await client.close();
          } finally {
            await bridge.stop();
          }
        },
      );

      await t.step("no client certificate: the broker refuses the TLS handshake", async () => {
        const bridge = await BridgeProcess.start({
          brokers: `127.0.0.1:${SASL_SSL_PORT}`,
          set: [
            "kafka.tls.enabled=true",
            `kafka.tls.caFile=${broker.tlsDir}/ca.crt`,
            "kafka.sasl.mechanism=scram-sha-512",
            `kafka.sasl.username=${USER}`,
            `kafka.sasl.passwordFile=${passwordFile}`,
          ],
        });
        try {
          await until(
            "the bridge to report Kafka down",
            async () => (await readyz(bridge)).ready === false,
            20_000,
          );
        } finally {
          await bridge.stop();
        }
      });
    } finally {
      await broker.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("kafka security: a missing CA or password file stops the start, named (exit 2)", async () => {
  await assert.rejects(
    () =>
      BridgeProcess.start({
        set: [
          "kafka.tls.enabled=true",
          "kafka.tls.caFile=/nonexistent/ca.crt",
          "kafka.sasl.mechanism=scram-sha-256",
          "kafka.sasl.username=u",
          "kafka.sasl.passwordFile=/nonexistent/password",
        ],
      }),
    (e: Error) => {
      assert.match(e.message, /exited \(code 2\)/);
      assert.match(e.message, /kafka\.tls\.caFile: cannot read \/nonexistent\/ca\.crt/);
      assert.match(e.message, /kafka\.sasl\.passwordFile: cannot read \/nonexistent\/password/);
      return true;
    },
  );
});
