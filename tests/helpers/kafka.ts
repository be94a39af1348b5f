/**
 * The real Kafka broker the tests use. scripts/test.sh starts one (or takes
 * KAFKA_BROKERS) and exports KAFKA_BROKERS; tests that need to stop a broker start
 * their own through scripts/kafka.sh, so the shared one is never disturbed.
 */
import process from "node:process";
import { Kafka, logLevel } from "kafkajs";

// kafkajs' harmless negative-timer warning (see src/kafka/kafkajs/client.ts) would clutter test output.
process.removeAllListeners("warning");

export function brokers(): string {
  const b = Deno.env.get("KAFKA_BROKERS");
  if (!b) {
    throw new Error(
      "KAFKA_BROKERS is not set: run the tests through scripts/test.sh (or deno task test with KAFKA_BROKERS)",
    );
  }
  return b;
}

export function uniqueTopic(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Creates topics through the Kafka admin API and waits until they serve metadata. */
export async function createTopics(
  topics: { name: string; partitions?: number; configs?: Record<string, string> }[],
  brokerList = brokers(),
): Promise<void> {
  const kafka = new Kafka({
    clientId: "edge-bridge-tests",
    brokers: brokerList.split(","),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: topics.map((t) => ({
        topic: t.name,
        numPartitions: t.partitions ?? 1,
        replicationFactor: 1,
        configEntries: Object.entries(t.configs ?? {}).map(([name, value]) => ({ name, value })),
      })),
    });
  } finally {
    await admin.disconnect();
  }
}

const root = new URL("../../", import.meta.url).pathname;

/** A broker of the test's own, for tests that stop and restart Kafka. */
export class OwnBroker {
  /**
   * proxyPorts: extra listeners advertised at these ports, for TcpProxy instances (see kafka.sh).
   * saslSslPort: a SASL_SSL listener there, needing a client certificate (files in `tlsDir`).
   */
  constructor(readonly port: number, readonly proxyPorts: number[] = [], readonly saslSslPort?: number) {}

  /** Where kafka.sh put ca.crt, client.crt and client.key for the SASL_SSL listener. */
  get tlsDir(): string {
    return `${root}.kafka/${this.port}/tls`;
  }

  /** Where a client behind proxy i must send its traffic (the listener the proxy forwards to). */
  proxyTarget(i: number): number {
    return this.port + 2 + i;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async #script(cmd: string): Promise<void> {
    const out = await new Deno.Command("bash", {
      args: [
        `${root}scripts/kafka.sh`,
        cmd,
        "--port",
        String(this.port),
        ...(this.proxyPorts.length ? ["--proxy-ports", this.proxyPorts.join(",")] : []),
        ...(this.saslSslPort ? ["--sasl-ssl-port", String(this.saslSslPort)] : []),
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(
        `kafka.sh ${cmd} failed: ${new TextDecoder().decode(out.stderr)}${
          new TextDecoder().decode(out.stdout)
        }`,
      );
    }
  }

  start(): Promise<void> {
    return this.#script("start");
  }

  stop(): Promise<void> {
    return this.#script("stop");
  }
}
