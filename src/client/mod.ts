/**
 * The Edge Bridge client SDK: publish to and subscribe from Kafka through a live/backup
 * pair of bridges, over the web-standard WebSocket (Deno and browsers). See docs/client.md.
 */
export {
  type ConnectionState,
  EdgeBridgeClient,
  type EdgeBridgeClientOptions,
  type LogLine,
} from "./client.ts";
export type { PublishAck, PublishOptions } from "./publisher.ts";
export {
  type From,
  type Message,
  type Skipped,
  type SubscribeOptions,
  Subscription,
} from "./subscription.ts";
export { ClientClosedError, OutboxFullError, PublishError, SubscriptionError } from "./errors.ts";
export type { BackoffOptions } from "./backoff.ts";
export type { OutboxLimits } from "./outbox.ts";
export type { Encoding } from "../protocol/frames.ts";
export { ErrorCode } from "../protocol/codes.ts";
