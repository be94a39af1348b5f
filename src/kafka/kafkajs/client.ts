/** Builds the kafkajs client with its logs routed into pino. */
import { Kafka, logLevel as KafkaLogLevel } from "kafkajs";
import type { Config } from "../../config/schema.ts";
import type { Logger } from "../../observability/logger.ts";

export function createKafka(config: Config["kafka"], log: Logger): Kafka {
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
