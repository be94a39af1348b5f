/** Builds the kafkajs client with its logs routed into pino. */
import process from "node:process";
import { Kafka, logLevel as KafkaLogLevel, type SASLOptions } from "kafkajs";
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../observability/logger.ts";
import type { KafkaSasl, KafkaSecurity } from "../security.ts";
import { installEosRetryShim } from "./eos_retry_shim.ts";
import { installVarintShim } from "./varint_shim.ts";

/**
 * kafkajs' request queue computes a negative timer delay when it is not throttled
 * (a known, harmless bug: the timer runs after 1 ms). Node-compat prints a
 * TimeoutNegativeWarning to stderr each time; route process warnings to the log
 * instead, dropping that one.
 */
function quietKnownWarnings(log: Logger): void {
  process.removeAllListeners("warning");
  process.on("warning", (w: Error) => {
    if (w.name !== "TimeoutNegativeWarning") log.warn({ warning: w.name }, w.message);
  });
}

/** kafkajs types each mechanism's options apart. */
function saslOptions(sasl: KafkaSasl | undefined): SASLOptions | undefined {
  if (!sasl) return undefined;
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case "plain":
      return { mechanism: "plain", username, password };
    case "scram-sha-256":
      return { mechanism: "scram-sha-256", username, password };
    case "scram-sha-512":
      return { mechanism: "scram-sha-512", username, password };
  }
}

/**
 * What InitProducerId gave the last transactional producer of a client: kafkajs keeps the
 * producer id and epoch to itself and only logs them (at debug), so while an activation runs
 * the lane raises its client's level to debug, and that one line is handed here; every other
 * debug or info line is dropped.
 */
export class ProducerIdWatch {
  last?: { producerId: string; producerEpoch: number };

  /** True when the log entry was the one that names the producer id and epoch. */
  observe(message: string, extra: Record<string, unknown>): boolean {
    if (message !== "Initialized producer id & epoch") return false;
    const { producerId, producerEpoch } = extra;
    if (
      (typeof producerId === "string" || typeof producerId === "number") && typeof producerEpoch === "number"
    ) {
      this.last = { producerId: String(producerId), producerEpoch };
    }
    return true;
  }
}

export function createKafka(
  config: Config["kafka"],
  log: Logger,
  security: KafkaSecurity = {},
  producerIds?: ProducerIdWatch,
): Kafka {
  return kafkaClients(config, log, security, producerIds)();
}

/**
 * Makes kafkajs clients that share one configuration (checked, and warned about, once). A client
 * of its own per group consumer: kafkajs keeps the committed offsets of a group in one map per
 * client, shared by every consumer made from it, and a consumer that joins clears its group's
 * entry for all of them; two members of one group on one client (two browsers in the same group,
 * or a member still leaving while its successor joins) then crash each other.
 */
export function kafkaClients(
  config: Config["kafka"],
  log: Logger,
  security: KafkaSecurity = {},
  producerIds?: ProducerIdWatch,
): () => Kafka {
  quietKnownWarnings(log);
  if (process.env.KAFKAJS_LOG_LEVEL !== undefined) {
    // kafkajs pins every logger to it, which would hide the InitProducerId line that gives each
    // HA activation its epoch (and the bridge routes kafkajs' logs into its own anyway).
    log.warn(
      { KAFKAJS_LOG_LEVEL: process.env.KAFKAJS_LOG_LEVEL },
      "KAFKAJS_LOG_LEVEL is ignored: use log.level",
    );
    delete process.env.KAFKAJS_LOG_LEVEL;
  }
  if (!installVarintShim()) {
    log.warn("kafkajs is not the version the varint shim was written for; encoding as shipped");
  }
  if (!installEosRetryShim()) {
    log.warn("kafkajs is not the version the transaction retry shim was written for; retrying as shipped");
  }
  const kafkaLog = log.child({ component: "kafkajs" });
  if (security.sasl?.mechanism === "plain" && !security.tls) {
    log.warn("kafka.sasl.mechanism is plain without kafka.tls: the password crosses the network in clear");
  }
  return () =>
    new Kafka({
      clientId: config.clientId,
      brokers: config.brokers,
      connectionTimeout: config.connectionTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      // kafkajs hands `ssl` to tls.connect; the host name is checked against the broker's certificate.
      ssl: security.tls ? { ...security.tls } : undefined,
      sasl: saslOptions(security.sasl),
      // Short backoff so that service resumes within about a second of Kafka returning.
      retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 5 },
      // A watch raises this client's level to debug only while an activation runs (the lane's
      // activate(), one lane per such client): debug on every request costs about 5-10% CPU.
      logLevel: KafkaLogLevel.WARN,
      logCreator: () => ({ level, log: entry }) => {
        const { message, ...rest } = entry;
        if (level > KafkaLogLevel.WARN) { // only reaches here with a watch
          producerIds?.observe(message, rest);
          return;
        }
        delete (rest as Record<string, unknown>).timestamp;
        if (kafkajsLineLevel(level, message, rest) === "warn") kafkaLog.warn(rest, message);
        else kafkaLog.debug(rest, message);
      },
    });
}

/** What the coordinator answers for a few ms after each transaction commits (it writes the markers). */
const COORDINATOR_BUSY = /another concurrent operation on the same transaction/;

/**
 * The bridge's level for a kafkajs line at or above WARN. kafkajs logs every failed request at ERROR;
 * the bridge reports outages itself, so these go out at warn. A coordinator still finishing the last
 * transaction is not one: it is asked again (kafkajs for records, busy_retry.ts for offsets), and at
 * a steady rate of group commits it answers so about once in fifty. That goes to debug.
 */
export function kafkajsLineLevel(
  level: number,
  message: string,
  entry: Record<string, unknown>,
): "warn" | "debug" {
  if (level > KafkaLogLevel.ERROR) return "debug";
  // The broker's answer names it in `error`; the producer's retry line ("Failed to send messages: …") in the message.
  const busy = COORDINATOR_BUSY.test(message) ||
    (typeof entry.error === "string" && COORDINATOR_BUSY.test(entry.error));
  return busy ? "debug" : "warn";
}
