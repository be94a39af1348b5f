/**
 * The configuration schema: every key, its type, its bounds and its default.
 * docs/configuration.md documents the same keys; keep them in step.
 */
import { z } from "zod";
import { isLoopbackHost } from "../util/ip.ts";
import { ANONYMOUS_ID } from "../protocol/namespace.ts";

const ms = (def: number, min = 1, max = 3_600_000) => z.number().int().min(min).max(max).default(def);
const MiB = 1024 * 1024;

const ORIGIN_FORMAT = 'must be an origin, http(s)://host[:port] with no path, or "*" for any';
/** scheme://host[:port] exactly as a browser sends it in the Origin header (no path, no trailing slash). */
function isOrigin(s: string): boolean {
  if (s === "*") return true;
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.origin === s.toLowerCase();
  } catch {
    return false;
  }
}

const JWKS_URL_FORMAT =
  "must be an https:// URL (http:// only to a loopback host: keys fetched in the clear " +
  "can be swapped on the way, and then any token verifies)";
/** https, or http to this machine only: the JWKS decides which tokens verify. */
function isJwksUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === "https:" || (u.protocol === "http:" && isLoopbackHost(u.hostname));
  } catch {
    return false;
  }
}

/** Who may do what (src/auth/): glob patterns ('*' = any run of characters). */
const permissionsSchema = {
  /** Kafka topic names (after topics.clientPrefix is stripped) the principal may publish to. */
  publish: z.array(z.string().min(1).max(300)).default([]),
  /** Kafka topic names the principal may subscribe to. */
  subscribe: z.array(z.string().min(1).max(300)).default([]),
  /** Group names (as the client sends them) the principal may join. */
  groups: z.array(z.string().min(1).max(300)).default([]),
};

/** A static API key: only its hash is kept (`edge-bridge hash-key` makes one). */
const apiKeySchema = z.object({
  /** The principal's id: what its clientIds are bound to and its groups are namespaced with. */
  id: z.string().min(1).max(100).regex(/^[A-Za-z0-9._@-]+$/, "letters, digits, '.', '_', '@' or '-' only")
    .refine((id) => id !== ANONYMOUS_ID, `"${ANONYMOUS_ID}" is reserved for connections without a token`),
  hash: z.string().regex(
    /^(sha256:[0-9a-f]{64}|scrypt:\d+:\d+:\d+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+)$/,
    "must be sha256:<64 hex> or scrypt:N:r:p:<salt>:<hash>, as `edge-bridge hash-key` prints",
  ),
  /** A revoked key is refused with AUTH_REVOKED (kept, rather than deleted, so the refusal says why). */
  revoked: z.boolean().default(false),
  ...permissionsSchema,
}).strict();

const authSchema = z.object({
  /**
   * Connections without a token: "loopback" allows them only while server.host is a loopback
   * address, so a bridge reachable from the network never serves them unless told to, and then
   * only to connections from loopback that name no forwarded client (not through a proxy).
   */
  anonymous: z.enum(["loopback", "enabled", "disabled"]).default("loopback"),
  /** What an anonymous connection may do (by default: every topic the bridge exposes, any group). */
  anonymousPermissions: z.object({
    publish: z.array(z.string().min(1).max(300)).default(["*"]),
    subscribe: z.array(z.string().min(1).max(300)).default(["*"]),
    groups: z.array(z.string().min(1).max(300)).default(["*"]),
  }).strict().default({}),
  /** How long a connection without a token in its handshake has to send its `auth` frame. */
  timeoutMs: ms(5_000, 100, 60_000),
  /** How long before a token expires the connection gets its `auth_expiring` frame. */
  expiryWarningMs: ms(30_000, 0, 3_600_000),
  /** Prefix each principal's group names with its id, so principals cannot join each other's groups. */
  namespaceGroups: z.boolean().default(true),
  /** hello's clientId must be the principal's id ("exact"), or it or "<id>." + anything ("prefix"); "any": unchecked. */
  clientIdBinding: z.enum(["prefix", "exact", "any"]).default("prefix"),
  /** Bytes of frames a connection may send while its token is being checked; beyond, it is closed. */
  maxPreAuthBytes: z.number().int().min(1024).max(64 * MiB).default(64 * 1024),
  /** scrypt API-key checks running at once (each takes 16 MiB and tens of ms of CPU). */
  maxConcurrentKeyHashes: z.number().int().min(1).max(64).default(2),
  /** scrypt checks waiting for their turn; beyond, a token is refused with AUTH_UNAVAILABLE (retryable). */
  maxQueuedKeyHashes: z.number().int().min(0).max(10_000).default(32),
  /** Failed authentications per client address within failureWindowMs; then AUTH_RATE_LIMITED (0: off). */
  maxFailuresPerIp: z.number().int().min(0).max(1_000_000).default(10),
  /** The window of maxFailuresPerIp. */
  failureWindowMs: ms(10_000, 100, 3_600_000),
  jwt: z.object({
    /** Algorithms accepted; a token signed with another is refused. */
    algorithms: z.array(z.enum(["HS256", "RS256", "ES256", "EdDSA"])).min(1).default([
      "HS256",
      "RS256",
      "ES256",
      "EdDSA",
    ]),
    /** HS256: a file holding the shared secret (at least 32 bytes; surrounding whitespace is ignored). */
    secretFile: z.string().min(1).optional(),
    /** RS256, ES256, EdDSA: PEM public keys (SPKI), each tried in turn. */
    publicKeyFiles: z.array(z.string().min(1)).default([]),
    /** A JWKS endpoint (https://, or http:// on loopback); keys are cached and fetched again when unknown. */
    jwksUrl: z.string().refine(isJwksUrl, JWKS_URL_FORMAT).optional(),
    /** How long fetched JWKS keys are trusted before they are fetched again. */
    jwksCacheMs: ms(600_000, 1_000, 86_400_000),
    /** Required `iss` when set. */
    issuer: z.string().min(1).optional(),
    /** Required `aud` when set (strongly advised: a token for another service is then refused). */
    audience: z.string().min(1).optional(),
    /** Allowed clock skew when checking exp and nbf. */
    clockToleranceSec: z.number().int().min(0).max(300).default(30),
    /** The claim holding {publish, subscribe, groups}; `sub` names the principal. */
    permissionsClaim: z.string().min(1).default("edge-bridge"),
  }).strict().default({}),
  /** Static API keys, stored hashed. */
  apiKeys: z.array(apiKeySchema).default([]).superRefine((keys, ctx) => {
    const seen = new Set<string>();
    keys.forEach((k, i) => {
      if (seen.has(k.hash)) ctx.addIssue({ code: "custom", path: [i, "hash"], message: "hash listed twice" });
      seen.add(k.hash);
    });
  }),
}).strict().default({});

export const configSchema = z.object({
  node: z.object({
    /** Names this bridge in logs, the greeting and Kafka headers. Defaults to the host name. */
    id: z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-' only")
      .optional(),
  }).strict().default({}),
  server: z.object({
    host: z.string().min(1).default("127.0.0.1"),
    port: z.number().int().min(0).max(65535).default(8080),
    path: z.string().regex(/^\//, "must start with '/'").default("/ws"),
    maxConnections: z.number().int().min(1).max(1_000_000).default(1000),
    maxFrameBytes: z.number().int().min(1024).max(64 * MiB).default(1 * MiB),
    maxInflightPublishes: z.number().int().min(1).max(100_000).default(256),
    maxSubscriptions: z.number().int().min(1).max(1000).default(16),
    maxCredit: z.number().int().min(1).max(1_000_000).default(10_000),
    slowConsumer: z.object({
      policy: z.enum(["pause", "disconnect"]).default("pause"),
      /** Socket send buffer above which deliveries stop (pause) or the client is dropped (disconnect). */
      maxBufferedBytes: z.number().int().min(64 * 1024).max(1024 * MiB).default(4 * MiB),
      /** With "disconnect": how long a subscription may sit with messages waiting and no credit. */
      stallTimeoutMs: ms(30_000, 100),
    }).strict().default({}),
    shutdownTimeoutMs: ms(10_000, 100, 600_000),
    /** TLS toward clients (wss://, https://): both files, PEM. Re-read on SIGHUP. */
    tls: z.object({
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
    }).strict().default({}).superRefine((tls, ctx) => {
      if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
        const missing = tls.certFile ? "keyFile" : "certFile";
        ctx.addIssue({ code: "custom", path: [missing], message: "TLS needs both certFile and keyFile" });
      }
    }),
    /**
     * Browser origins (scheme://host[:port]) allowed besides the bridge's own; a WebSocket whose
     * Origin header is neither is refused. Clients that send no Origin (not browsers) are not checked.
     */
    allowedOrigins: z.array(z.string().refine(isOrigin, ORIGIN_FORMAT)).default([]),
  }).strict().default({}),
  kafka: z.object({
    brokers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port")).min(1).default([
      "127.0.0.1:19092",
    ]),
    clientId: z.string().min(1).default("edge-bridge"),
    connectionTimeoutMs: ms(3_000),
    requestTimeoutMs: ms(10_000),
    /** A publish not confirmed by Kafka within this time is nacked KAFKA_TIMEOUT. */
    publishTimeoutMs: ms(15_000, 100),
    /** How long an idle producer waits to fill a batch once it has one publish (0: send at once). */
    lingerMs: z.number().int().min(0).max(1000).default(0),
    /** Records per partition batch at most. */
    maxBatchMessages: z.number().int().min(1).max(100_000).default(5000),
    /** Bytes per partition batch at most; a topic's max.message.bytes lowers it further. */
    maxBatchBytes: z.number().int().min(1024).max(64 * MiB).default(1 * MiB),
    /** Bytes per produce request at most, over all its partitions' batches. */
    maxRequestBytes: z.number().int().min(1024).max(100 * MiB).default(8 * MiB),
    /**
     * Producers the sink writes through, each with one request in flight; a partition
     * always uses the same one. HA mode uses one (the pair shares one transactional id).
     */
    producers: z.number().int().min(1).max(32).default(4),
    /** max.message.bytes to assume for a topic whose config Kafka will not describe. */
    defaultMaxMessageBytes: z.number().int().min(1024).max(1024 * MiB).default(1_048_588),
    topicCache: z.object({
      /** Topics remembered at most; the least recently used go first. */
      maxTopics: z.number().int().min(1).max(1_000_000).default(10_000),
      /** How long a topic's partitions and limits are trusted before they are read again. */
      ttlMs: ms(30_000, 100),
      /** How long "no such topic" is trusted, so that a topic created later is found soon. */
      unknownTtlMs: ms(2_000, 0),
    }).strict().default({}),
    healthCheckIntervalMs: ms(2_000, 100),
    /** TLS to the brokers; files are PEM. Without caFile the system's trusted CAs are used. */
    tls: z.object({
      enabled: z.boolean().default(false),
      caFile: z.string().min(1).optional(),
      /** A client certificate and its key, for brokers that require one (ssl.client.auth). */
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
    }).strict().default({}).superRefine((tls, ctx) => {
      if (Boolean(tls.certFile) !== Boolean(tls.keyFile)) {
        const missing = tls.certFile ? "keyFile" : "certFile";
        ctx.addIssue({
          code: "custom",
          path: [missing],
          message: "a client certificate needs both certFile and keyFile",
        });
      }
      if (!tls.enabled && (tls.caFile || tls.certFile || tls.keyFile)) {
        ctx.addIssue({
          code: "custom",
          path: ["enabled"],
          message: "set to true to use the TLS files given",
        });
      }
    }),
    /** SASL to the brokers. The password comes from password or (better) passwordFile. */
    sasl: z.object({
      mechanism: z.enum(["none", "plain", "scram-sha-256", "scram-sha-512"]).default("none"),
      username: z.string().min(1).optional(),
      password: z.string().min(1).optional(),
      passwordFile: z.string().min(1).optional(),
    }).strict().default({}).superRefine((sasl, ctx) => {
      if (sasl.mechanism === "none") return;
      if (!sasl.username) {
        ctx.addIssue({
          code: "custom",
          path: ["username"],
          message: `required with mechanism ${sasl.mechanism}`,
        });
      }
      if (Boolean(sasl.password) === Boolean(sasl.passwordFile)) {
        ctx.addIssue({
          code: "custom",
          path: ["password"],
          message: `mechanism ${sasl.mechanism} needs exactly one of password and passwordFile`,
        });
      }
    }),
    consumer: z.object({
      sessionTimeoutMs: ms(10_000, 3_000, 300_000),
      heartbeatIntervalMs: ms(1_000, 100, 60_000),
      maxBytesPerPartition: z.number().int().min(1024).max(64 * MiB).default(1 * MiB),
      /** How often consumers re-read topic metadata, which is how they notice partitions added to a topic. */
      metadataMaxAgeMs: ms(30_000, 1_000),
      /** Prefixed to client group names, so bridge groups cannot collide with others. */
      groupPrefix: z.string().default("edge-bridge."),
    }).strict().default({}),
  }).strict().default({}),
  hub: z.object({
    /** Serve broadcast subscriptions from one Kafka reader per topic (false: a consumer each, as before). */
    enabled: z.boolean().default(true),
    /** Recent records each partition's window holds for subscribers to read; older ones come from Kafka. */
    windowRecords: z.number().int().min(1).max(10_000_000).default(10_000),
    windowBytes: z.number().int().min(64 * 1024).max(4096 * MiB).default(16 * MiB),
    /** Topics with broadcast subscribers at once (one reader each). */
    maxTopics: z.number().int().min(1).max(100_000).default(1_000),
    /** Kafka consumers reading for subscribers behind a window, across all topics; more wait their turn. */
    maxCatchUpReaders: z.number().int().min(1).max(10_000).default(32),
  }).strict().default({}),
  dedupe: z.object({
    /** Publishes that carry (clientId, seq) are written once, however often they are resent. */
    enabled: z.boolean().default(true),
    /** Clients whose windows are kept; beyond it the least recently seen is forgotten. */
    maxClients: z.number().int().min(1).max(10_000_000).default(100_000),
    /** Unanswered positions kept per client (keep it above server.maxInflightPublishes). */
    windowPerClient: z.number().int().min(1).max(100_000).default(1_024),
    /** A client that has not published for this long is forgotten (HA: the log's retention.ms too). */
    clientTtlMs: ms(3_600_000, 1_000, 7 * 24 * 3_600_000),
    /** HA: the compacted topic that holds the windows. Default: __edge-bridge-dedupe-<ha.pairId>. */
    topic: z.string().min(1).max(249).regex(/^[A-Za-z0-9._-]+$/).optional(),
    /** HA: while a new live has not read the log back to its barrier, it warns this often. */
    rebuildTimeoutMs: ms(30_000, 100, 600_000),
  }).strict().default({}),
  topics: z.object({
    /** Glob patterns ('*' matches any run of characters) over Kafka topic names. */
    allow: z.array(z.string().min(1)).default(["*"]),
    /** Kafka's internal topics, Schema Registry's and Kafka Connect's (connector configs hold credentials). */
    deny: z.array(z.string().min(1)).default(["__*", "_schemas", "connect-*"]),
    /** Clients name topics with this prefix; the bridge strips it (e.g. "kafka." as in JMS Bridge). */
    clientPrefix: z.string().default(""),
  }).strict().default({}),
  ha: z.object({
    /** none: a single bridge; file-lock: a shared directory decides; heartbeat: peers decide over UDP. */
    mode: z.enum(["none", "file-lock", "heartbeat"]).default("none"),
    /** Names the pair: the Kafka transactional id that fences zombies, and the heartbeat group. */
    pairId: z.string().min(1).max(100).regex(/^[A-Za-z0-9._-]+$/, "letters, digits, '.', '_' or '-' only")
      .default("edge-bridge"),
    /** Higher wins elections; the original live gets the higher priority and takes back over (failback). */
    priority: z.number().int().min(0).max(1000).default(100),
    allowFailback: z.boolean().default(true),
    /** SIGTERM on the live hands over at once instead of waiting for the peer to notice. */
    failoverOnShutdown: z.boolean().default(true),
    /** How long a returning higher-priority node must be healthy before the live hands back. */
    failbackHoldDownMs: ms(5_000, 0, 600_000),
    /** How long the live may be cut off from Kafka before it hands over to a backup that reaches Kafka. */
    kafkaLossTimeoutMs: ms(5_000, 500, 600_000),
    /**
     * A live stepping down (drain, then let go of Kafka) is done by then: whatever still waits
     * (a Kafka link that drops packets) is abandoned, and the node is a backup. Fencing makes it safe.
     */
    stepDownTimeoutMs: ms(5_000, 500, 600_000),
    /** An activation (taking the transactional id from Kafka) that takes longer is given up and retried. */
    activationTimeoutMs: ms(30_000, 1_000, 600_000),
    /** Voluntary handovers (failback, Kafka loss) allowed per minute; more are held back to damp flapping. */
    maxHandoversPerMinute: z.number().int().min(1).max(60).default(4),
    /** The URL clients should use to reach this node; backups name the live's in their refusal. */
    advertisedUrl: z.string().regex(
      /^wss?:\/\/[!#-~]{1,500}$/,
      "must be a ws:// or wss:// URL of printable ASCII (no spaces), at most 506 characters",
    ).optional(),
    /** Where this node keeps its epoch in heartbeat mode. */
    dataDir: z.string().min(1).default(".edge-bridge"),
    fileLock: z.object({
      /** Shared directory (local disk, or NFSv4 across hosts). Required in file-lock mode. */
      dir: z.string().min(1).optional(),
      pollMs: ms(500, 50, 60_000),
      /** How often a backup waiting for the lock checks whether it is free, between polls. */
      probeMs: ms(50, 10, 60_000),
      verifyMs: ms(2_000, 100, 60_000),
    }).strict().default({}),
    heartbeat: z.object({
      /** host:port this node receives heartbeats on (UDP). */
      listen: z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port").default("127.0.0.1:7946"),
      /** host:port of each peer. Required in heartbeat mode. */
      peers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port")).default([]),
      intervalMs: ms(250, 20, 10_000),
      deadIntervalMs: ms(750, 60, 60_000),
      /** A file holding the pair's shared HMAC key (at least 32 bytes). Required in heartbeat mode. */
      keyFile: z.string().min(1).optional(),
    }).strict().default({}),
  }).strict().default({}).superRefine((ha, ctx) => {
    if (ha.mode === "file-lock" && ha.fileLock.pollMs > ha.fileLock.verifyMs) {
      ctx.addIssue({
        code: "custom",
        path: ["fileLock", "pollMs"],
        message:
          `must not exceed ha.fileLock.verifyMs (${ha.fileLock.verifyMs}): the live verifies its lock ` +
          `on a poll, and steps down when 3 × verifyMs pass without a verification`,
      });
    }
    if (ha.mode === "file-lock" && !ha.fileLock.dir) {
      ctx.addIssue({
        code: "custom",
        path: ["fileLock", "dir"],
        message: "required when ha.mode is file-lock",
      });
    }
    if (ha.mode === "heartbeat" && !ha.heartbeat.keyFile) {
      ctx.addIssue({
        code: "custom",
        path: ["heartbeat", "keyFile"],
        message:
          "required when ha.mode is heartbeat: unsigned beats could be forged by anyone who reaches the " +
          "port (make one with: head -c 48 /dev/urandom | base64 > heartbeat.key; the same file on both nodes)",
      });
    }
    if (ha.mode === "heartbeat" && ha.heartbeat.peers.length === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["heartbeat", "peers"],
        message: "needs at least one peer when ha.mode is heartbeat",
      });
    }
    if (ha.heartbeat.deadIntervalMs < 2 * ha.heartbeat.intervalMs) {
      ctx.addIssue({
        code: "custom",
        path: ["heartbeat", "deadIntervalMs"],
        message: "must be at least twice ha.heartbeat.intervalMs",
      });
    }
  }),
  auth: authSchema,
  /** Abuse limits (src/limits/): what one client, or all of them, may take. 0 turns a limit off. */
  limits: z.object({
    /** Open connections per client IP address. */
    maxConnectionsPerIp: z.number().int().min(0).max(1_000_000).default(64),
    /** Count loopback clients per IP too (off: a local TLS proxy connects from 127.0.0.1 for everyone). */
    countLoopback: z.boolean().default(false),
    /** Publishes per second per connection (a second's worth may come at once); more are nacked. */
    publishesPerSecond: z.number().int().min(0).max(10_000_000).default(20_000),
    /** Bytes per second per connection read from the socket; beyond it the bridge reads more slowly. */
    bytesPerSecond: z.number().int().min(0).max(100 * 1024 * MiB).default(32 * MiB),
    /** Kafka consumers (group subscriptions; broadcast ones too without the hub) per connection. */
    maxConsumersPerConnection: z.number().int().min(0).max(1000).default(4),
    /** Kafka consumers for clients across the bridge. */
    maxConsumers: z.number().int().min(0).max(100_000).default(256),
    /** Hard bound on each socket's send buffer, every frame kind; past it the client is closed (4009). */
    maxSendBufferBytes: z.number().int().min(0).max(4096 * MiB).default(16 * MiB),
    /** Series of the consumer-lag metric (labelled with client-chosen groups) at most. */
    maxLagSeries: z.number().int().min(1).max(1_000_000).default(1_000),
  }).strict().default({}),
  log: z.object({
    level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  }).strict().default({}),
}).strict().superRefine((c, ctx) => {
  // Deliveries pause at slowConsumer.maxBufferedBytes; the hard bound must leave room above it, or a
  // healthy slow reader would be closed instead of paused.
  const { maxSendBufferBytes } = c.limits;
  const pauseAt = c.server.slowConsumer.maxBufferedBytes;
  if (maxSendBufferBytes > 0 && maxSendBufferBytes < 2 * pauseAt) {
    ctx.addIssue({
      code: "custom",
      path: ["limits", "maxSendBufferBytes"],
      message: `must be 0 (off) or at least twice server.slowConsumer.maxBufferedBytes (${2 * pauseAt})`,
    });
  }
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
