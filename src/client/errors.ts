/** The errors the SDK hands to applications. Each says what happened and what is known about the record. */
import type { ErrorCode } from "../protocol/codes.ts";

/** A publish that will not be retried: the bridge refused it for good, or the client closed first. */
export class PublishError extends Error {
  override name = "PublishError";
  /** Always false: the SDK retries retryable refusals itself, so what reaches the app is final. */
  readonly retryable = false;
  constructor(
    readonly code: ErrorCode | "CLIENT_CLOSED",
    message: string,
    /** True when an earlier attempt may have reached Kafka (it was on the wire, or nacked KAFKA_TIMEOUT). */
    readonly maybeWritten: boolean,
    readonly seq: number,
  ) {
    super(message);
  }
}

/** The outbox holds as many unanswered publishes (or bytes) as it may; wait for acks before publishing more. */
export class OutboxFullError extends Error {
  override name = "OutboxFullError";
  constructor(
    readonly count: number,
    readonly bytes: number,
    readonly limits: { maxMessages: number; maxBytes: number },
    readonly recordBytes: number,
  ) {
    super(
      `outbox full: ${count} unanswered publishes of ${bytes} bytes are waiting for acks ` +
        `(limits: ${limits.maxMessages} messages, ${limits.maxBytes} bytes; this publish needs ${recordBytes} bytes); ` +
        `await earlier publishes before sending more`,
    );
  }
}

/** A subscription that ended against the application's will (refused, or ended by the bridge). */
export class SubscriptionError extends Error {
  override name = "SubscriptionError";
  constructor(
    /** NOT_COMMITTED: closed before the commit's message was delivered again on the current connection. */
    readonly code: ErrorCode | "UNSUBSCRIBED" | "CLIENT_CLOSED" | "NOT_COMMITTED",
    message: string,
    readonly sub: string,
  ) {
    super(message);
  }
}

/** The client was closed: it takes no more publishes or subscriptions. */
export class ClientClosedError extends Error {
  override name = "ClientClosedError";
  constructor(what: string) {
    super(`the Edge Bridge client is closed: ${what}`);
  }
}
