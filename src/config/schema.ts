/**
 * The configuration schema: every key, its type, its bounds and its default.
 * docs/configuration.md documents the same keys; keep them in step.
 */
import { z } from "zod";

const ms = (def: number, min = 1, max = 3_600_000) => z.number().int().min(min).max(max).default(def);
const MiB = 1024 * 1024;

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
    /** HA: how long a new live may take to read the log up to its barrier before the activation fails. */
    rebuildTimeoutMs: ms(30_000, 100, 600_000),
  }).strict().default({}),
  topics: z.object({
    /** Glob patterns ('*' matches any run of characters) over Kafka topic names. */
    allow: z.array(z.string().min(1)).default(["*"]),
    deny: z.array(z.string().min(1)).default(["__*"]),
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
    /** Voluntary handovers (failback, Kafka loss) allowed per minute; more are held back to damp flapping. */
    maxHandoversPerMinute: z.number().int().min(1).max(60).default(4),
    /** The URL clients should use to reach this node; backups name the live's in their refusal. */
    advertisedUrl: z.string().regex(/^wss?:\/\//, "must be a ws:// or wss:// URL").optional(),
    /** Where this node keeps its epoch in heartbeat mode. */
    dataDir: z.string().min(1).default(".edge-bridge"),
    fileLock: z.object({
      /** Shared directory (local disk, or NFSv4 across hosts). Required in file-lock mode. */
      dir: z.string().min(1).optional(),
      pollMs: ms(500, 50, 60_000),
      verifyMs: ms(2_000, 100, 60_000),
    }).strict().default({}),
    heartbeat: z.object({
      /** host:port this node receives heartbeats on (UDP). */
      listen: z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port").default("127.0.0.1:7946"),
      /** host:port of each peer. Required in heartbeat mode. */
      peers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, "must be host:port")).default([]),
      intervalMs: ms(250, 20, 10_000),
      deadIntervalMs: ms(750, 60, 60_000),
    }).strict().default({}),
  }).strict().default({}).superRefine((ha, ctx) => {
    if (ha.mode === "file-lock" && !ha.fileLock.dir) {
      ctx.addIssue({
        code: "custom",
        path: ["fileLock", "dir"],
        message: "required when ha.mode is file-lock",
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
  log: z.object({
    level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  }).strict().default({}),
}).strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
