/**
 * Which Kafka topics clients may reach, and under what names. Clients use
 * `clientPrefix + kafkaName` (e.g. "kafka.orders" as in JMS Bridge); allow and
 * deny globs apply to the Kafka name, and deny wins.
 */
import { ErrorCode } from "../protocol/mod.ts";

export type TopicDecision = { ok: true; kafkaTopic: string } | {
  ok: false;
  code: ErrorCode;
  message: string;
};

function globToRegExp(glob: string): RegExp {
  const body = glob.split("*").map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*");
  return new RegExp(`^${body}$`);
}

export class TopicPolicy {
  readonly #allow: RegExp[];
  readonly #deny: RegExp[];
  constructor(readonly opts: { allow: string[]; deny: string[]; clientPrefix: string }) {
    this.#allow = opts.allow.map(globToRegExp);
    this.#deny = opts.deny.map(globToRegExp);
  }

  resolve(clientTopic: string): TopicDecision {
    const prefix = this.opts.clientPrefix;
    if (!clientTopic.startsWith(prefix) || clientTopic.length === prefix.length) {
      return {
        ok: false,
        code: ErrorCode.TOPIC_DENIED,
        message: `topic "${clientTopic}" must start with "${prefix}"`,
      };
    }
    const kafkaTopic = clientTopic.slice(prefix.length);
    if (!/^[A-Za-z0-9._-]{1,249}$/.test(kafkaTopic)) {
      return {
        ok: false,
        code: ErrorCode.BAD_FIELD,
        message: `"${kafkaTopic}" is not a legal Kafka topic name`,
      };
    }
    if (this.#deny.some((r) => r.test(kafkaTopic)) || !this.#allow.some((r) => r.test(kafkaTopic))) {
      return {
        ok: false,
        code: ErrorCode.TOPIC_DENIED,
        message: `topic "${clientTopic}" is not exposed by this bridge`,
      };
    }
    return { ok: true, kafkaTopic };
  }

  toClient(kafkaTopic: string): string {
    return this.opts.clientPrefix + kafkaTopic;
  }
}
