/**
 * Error codes and WebSocket close codes of protocol v1. Shared by the bridge and
 * the client SDK; docs/protocol.md lists each with its meaning.
 */

export const PROTOCOL_VERSION = 1;

/** Codes carried by `nack` and `error` frames. */
export const ErrorCode = {
  BAD_JSON: "BAD_JSON",
  BAD_FRAME: "BAD_FRAME",
  UNKNOWN_OP: "UNKNOWN_OP",
  MISSING_FIELD: "MISSING_FIELD",
  BAD_FIELD: "BAD_FIELD",
  FRAME_TOO_LARGE: "FRAME_TOO_LARGE",
  UNKNOWN_TOPIC: "UNKNOWN_TOPIC",
  TOPIC_DENIED: "TOPIC_DENIED",
  BAD_OFFSET: "BAD_OFFSET",
  BAD_PARTITION: "BAD_PARTITION",
  UNKNOWN_SUBSCRIPTION: "UNKNOWN_SUBSCRIPTION",
  DUPLICATE_SUBSCRIPTION: "DUPLICATE_SUBSCRIPTION",
  TOO_MANY_INFLIGHT: "TOO_MANY_INFLIGHT",
  TOO_MANY_SUBSCRIPTIONS: "TOO_MANY_SUBSCRIPTIONS",
  TOO_MANY_CONNECTIONS: "TOO_MANY_CONNECTIONS",
  TOO_MANY_CONNECTIONS_PER_IP: "TOO_MANY_CONNECTIONS_PER_IP",
  RATE_LIMITED: "RATE_LIMITED",
  TOO_MANY_CONSUMERS: "TOO_MANY_CONSUMERS",
  BRIDGE_CONSUMERS_FULL: "BRIDGE_CONSUMERS_FULL",
  KAFKA_UNAVAILABLE: "KAFKA_UNAVAILABLE",
  KAFKA_TIMEOUT: "KAFKA_TIMEOUT",
  KAFKA_REJECTED: "KAFKA_REJECTED",
  RECORD_TOO_LARGE: "RECORD_TOO_LARGE",
  SHUTTING_DOWN: "SHUTTING_DOWN",
  NOT_LIVE: "NOT_LIVE",
  ORIGIN_NOT_ALLOWED: "ORIGIN_NOT_ALLOWED",
  AUTH_REQUIRED: "AUTH_REQUIRED",
  AUTH_INVALID: "AUTH_INVALID",
  AUTH_EXPIRED: "AUTH_EXPIRED",
  AUTH_CLAIMS: "AUTH_CLAIMS",
  AUTH_REVOKED: "AUTH_REVOKED",
  AUTH_TIMEOUT: "AUTH_TIMEOUT",
  AUTH_UNAVAILABLE: "AUTH_UNAVAILABLE",
  AUTH_RATE_LIMITED: "AUTH_RATE_LIMITED",
  PRE_AUTH_LIMIT: "PRE_AUTH_LIMIT",
  PUBLISH_DENIED: "PUBLISH_DENIED",
  SUBSCRIBE_DENIED: "SUBSCRIBE_DENIED",
  GROUP_DENIED: "GROUP_DENIED",
  CLIENT_ID_DENIED: "CLIENT_ID_DENIED",
  PARTITION_NOT_ASSIGNED: "PARTITION_NOT_ASSIGNED",
  OFFSET_NOT_DELIVERED: "OFFSET_NOT_DELIVERED",
  PUBLISH_IN_FLIGHT: "PUBLISH_IN_FLIGHT",
  SEQ_REUSED: "SEQ_REUSED",
  SLOW_CONSUMER: "SLOW_CONSUMER",
  INTERNAL: "INTERNAL",
} as const;
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/** Whether resending the same request later can succeed, per code. */
export const RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  BAD_JSON: false,
  BAD_FRAME: false,
  UNKNOWN_OP: false,
  MISSING_FIELD: false,
  BAD_FIELD: false,
  FRAME_TOO_LARGE: false,
  UNKNOWN_TOPIC: false,
  TOPIC_DENIED: false,
  BAD_OFFSET: false,
  BAD_PARTITION: false,
  UNKNOWN_SUBSCRIPTION: false,
  DUPLICATE_SUBSCRIPTION: false,
  TOO_MANY_INFLIGHT: true,
  TOO_MANY_SUBSCRIPTIONS: false,
  TOO_MANY_CONNECTIONS: true,
  TOO_MANY_CONNECTIONS_PER_IP: true,
  RATE_LIMITED: true,
  TOO_MANY_CONSUMERS: false,
  BRIDGE_CONSUMERS_FULL: true,
  KAFKA_UNAVAILABLE: true,
  KAFKA_TIMEOUT: true,
  KAFKA_REJECTED: false,
  RECORD_TOO_LARGE: false,
  SHUTTING_DOWN: true,
  NOT_LIVE: true,
  ORIGIN_NOT_ALLOWED: false,
  AUTH_REQUIRED: false,
  AUTH_INVALID: false,
  AUTH_EXPIRED: false,
  AUTH_CLAIMS: false,
  AUTH_REVOKED: false,
  AUTH_TIMEOUT: false,
  AUTH_UNAVAILABLE: true,
  AUTH_RATE_LIMITED: true,
  PRE_AUTH_LIMIT: false,
  PUBLISH_DENIED: false,
  SUBSCRIBE_DENIED: false,
  GROUP_DENIED: false,
  CLIENT_ID_DENIED: false,
  PARTITION_NOT_ASSIGNED: false,
  OFFSET_NOT_DELIVERED: false,
  PUBLISH_IN_FLIGHT: true,
  /** A seq already written to another topic: resending it cannot help; the client's numbering is wrong. */
  SEQ_REUSED: false,
  SLOW_CONSUMER: true,
  INTERNAL: true,
};

/** WebSocket close codes the bridge uses (RFC 6455 and the 4000-4999 private range). */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001, // bridge shutting down: reconnect (to another node)
  PROTOCOL_ERROR: 1002,
  MESSAGE_TOO_BIG: 1009, // frame beyond the hard cap; ws closes without an error frame
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013, // connection limit reached
  NOT_LIVE: 4001, // this node is a backup (or stepped down): connect to the live, named in the reason when known
  ORIGIN_NOT_ALLOWED: 4003, // a browser page whose origin is not in server.allowedOrigins
  SLOW_CONSUMER: 4008, // slow-consumer policy "disconnect"
  SEND_BUFFER_FULL: 4009, // the socket's send buffer passed limits.maxSendBufferBytes: the client does not read
  AUTH_FAILED: 4401, // authentication refused: no token when one is required, a bad or revoked one, or none in time
  AUTH_EXPIRED: 4402, // the token expired on an open connection (an auth_expiring frame came first)
} as const;
