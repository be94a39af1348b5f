/** Builds the kafkajs client with its logs routed into pino. */
import process from "node:process";
import { Kafka, logLevel as KafkaLogLevel } from "kafkajs";
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../observability/logger.ts";
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

export function createKafka(config: Config["kafka"], log: Logger): Kafka {
  quietKnownWarnings(log);
  if (!installVarintShim()) {
    log.warn("kafkajs is not the version the varint shim was written for; encoding as shipped");
  }
  const kafkaLog = log.child({ component: "kafkajs" });
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    // Short backoff so that service resumes within about a second of Kafka returning.
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 5 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: () => ({ level, log: entry }) => {
      const { message, ...rest } = entry;
      delete (rest as Record<string, unknown>).timestamp;
      // kafkajs logs every failed request at ERROR; the bridge reports outages itself, so keep these at debug/warn.
      if (level <= KafkaLogLevel.ERROR) kafkaLog.warn(rest, message);
      else kafkaLog.debug(rest, message);
    },
  });
}
