/**
 * Wires the bridge together and runs it until the signal aborts, then shuts down
 * in order: hand over (HA), stop accepting, answer in-flight publishes, leave
 * groups, close sockets, flush and disconnect Kafka.
 */
import type { Config } from "./config/schema.ts";
import { Authenticator } from "./auth/authenticator.ts";
import { ConfigError } from "./config/load.ts";
import type { Coordinator } from "./ha/coordinator.ts";
import { FileLockCoordinator } from "./ha/file_lock.ts";
import { HeartbeatCoordinator } from "./ha/heartbeat.ts";
import { LiveMarks } from "./ha/live_marks.ts";
import { HaNode } from "./ha/node.ts";
import { LogFollower } from "./dedupe/follower.ts";
import { DedupeLedger } from "./dedupe/ledger.ts";
import { encodeLiveMark, liveMarkKey } from "./dedupe/codec.ts";
import { DedupeTable } from "./dedupe/table.ts";
import { BroadcastHub } from "./hub/hub.ts";
import { KafkaHealth } from "./kafka/health.ts";
import { KafkajsCatalog } from "./kafka/kafkajs/catalog.ts";
import { createKafka, kafkaClients, ProducerIdWatch } from "./kafka/kafkajs/client.ts";
import { partitionForKey } from "./kafka/kafkajs/partitioner.ts";
import { KafkajsProducerLane } from "./kafka/kafkajs/producer_lane.ts";
import { KafkajsSource } from "./kafka/kafkajs/source.ts";
import { type KafkaSecurity, KafkaSecurityError, readKafkaSecurity } from "./kafka/security.ts";
import type { Logger } from "./observability/logger.ts";
import { BridgeMetrics } from "./observability/metrics.ts";
import { ConsumerBudget } from "./limits/consumer_budget.ts";
import { CloseCode, ErrorCode } from "./protocol/mod.ts";
import { BridgeServer } from "./server/server.ts";
import type { NodeIdentity } from "./session/session.ts";
import { TopicPolicy } from "./session/topics.ts";
import { BatchingSink } from "./sink/sink.ts";
import { SystemdNotifier } from "./systemd/notify.ts";
import { type CertificateMaterial, readCertificateFiles } from "./tls/certificate_files.ts";
import { reloadCertificateOnSighup } from "./tls/reload.ts";

export interface RunningInfo {
  url: string;
  port: number;
}

/** A node without HA is always live at epoch 0. */
export function standaloneIdentity(node: string): NodeIdentity {
  return { node, role: () => "live", epoch: () => 0 };
}

export async function runBridge(
  config: Config,
  node: string,
  log: Logger,
  signal: AbortSignal,
  onListening?: (info: RunningInfo) => void,
): Promise<void> {
  // First: a bad NOTIFY_SOCKET stops the start before anything else is opened.
  const systemd = SystemdNotifier.fromEnv((name) => Deno.env.get(name), {
    onError: (message, e) => log.warn({ message, err: e.message }, "could not notify systemd"),
  });
  // Certificates, keys and passwords are read now: a bad file stops the start, named (exit code 2).
  const { certificate, kafkaSecurity } = await readSecurityFiles(config);
  const auth = await authenticator(config, log);
  const metrics = new BridgeMetrics();
  metrics.boundLag(config.limits.maxLagSeries);
  const kafka = createKafka(config.kafka, log, kafkaSecurity);
  const k = config.kafka;
  const catalog = new KafkajsCatalog(kafka, {
    maxTopics: k.topicCache.maxTopics,
    topicTtlMs: k.topicCache.ttlMs,
    unknownTopicTtlMs: k.topicCache.unknownTtlMs,
    defaultMaxMessageBytes: k.defaultMaxMessageBytes,
  });
  const health = new KafkaHealth(catalog, config.kafka.healthCheckIntervalMs, config.kafka.brokers, log);
  health.onChange((up) => metrics.kafkaUp.set(up ? 1 : 0));
  const haEnabled = config.ha.mode !== "none";
  let ha: HaNode | undefined;
  const transactionalId = haEnabled ? `edge-bridge-ha.${config.ha.pairId}` : undefined;
  // HA: the transactional lane has a client of its own, whose InitProducerId answers give each
  // activation its epoch (kafkajs only logs them; see ProducerIdWatch).
  const producerIds = haEnabled ? new ProducerIdWatch() : undefined;
  const laneKafka = producerIds ? createKafka(config.kafka, log, kafkaSecurity, producerIds) : kafka;
  const lanes = Array.from(
    { length: haEnabled ? 1 : k.producers },
    () =>
      new KafkajsProducerLane(laneKafka, {
        transactionalId,
        producerIds,
        requestTimeoutMs: k.requestTimeoutMs,
      }),
  );
  const liveMarks = config.ha.mode === "heartbeat" ? new LiveMarks(node) : undefined;
  const d = config.dedupe;
  const dedupeTopic = haEnabled && d.enabled
    ? d.topic ?? `__edge-bridge-dedupe-${config.ha.pairId}`
    : undefined;
  const dedupe = d.enabled
    ? new DedupeLedger(
      new DedupeTable({
        maxClients: d.maxClients,
        windowPerClient: d.windowPerClient,
        clientTtlMs: d.clientTtlMs,
      }),
      {
        node,
        logTopic: dedupeTopic,
        onLiveMark: liveMarks &&
          ((from, epoch, seq, writtenAt) =>
            liveMarks.observe(from, epoch, seq, performance.now(), Date.now() - writtenAt)),
        rebuildTimeoutMs: d.rebuildTimeoutMs,
        epoch: () => ha?.epoch() ?? 0,
        onUnverifiable: (reason) => metrics.dedupeUnverifiable.inc({ reason }),
        onSlowRebuild: (waitedMs) =>
          log.warn(
            { topic: dedupeTopic, waitedMs },
            "the dedupe log is not read back yet: publishes with seq are refused (retryable) until it is",
          ),
        onRebuilt: (waitedMs) =>
          log.info(
            { topic: dedupeTopic, waitedMs },
            "the dedupe log is read back to the barrier: publishes with seq are taken",
          ),
        onUnreadable: (why) => {
          metrics.dedupeLogUnreadable.inc();
          log.warn({ topic: dedupeTopic, why }, "skipped a dedupe log record this version cannot read");
        },
      },
    )
    : undefined;
  if (dedupe) {
    metrics.watchDedupe(() => ({ clients: dedupe.table.clients, positions: dedupe.table.entries }));
  }
  const sink = new BatchingSink({
    transactional: haEnabled,
    onSequencedFate: dedupe && ((record, fate) => dedupe.fate(record, fate)),
    companion: dedupe?.companion,
    afterActivation: dedupe && ((produce) => dedupe.afterActivation(produce)),
    lingerMs: k.lingerMs,
    maxBatchMessages: k.maxBatchMessages,
    maxBatchBytes: k.maxBatchBytes,
    maxRequestBytes: k.maxRequestBytes,
    publishTimeoutMs: k.publishTimeoutMs,
    onError: (e) => {
      metrics.kafkaErrors.inc({ operation: "produce" });
      log.warn({ kind: e.kind, error: e.message }, "Kafka produce failed");
      // Whatever the node is doing (even stepping down already), a newer live exists: never rejects.
      if (e.kind === "fenced" && ha) void ha.demote(e.message, "fenced");
      else void health.check();
    },
    // After a refused request Kafka may have partly written, the producer needs a fresh epoch:
    // the HA coordinator sees the sink inactive and re-activates only while it can confirm this
    // node is still the live, or steps down (src/ha/coordinator.ts).
    onRequestDone: (records, ms) => {
      metrics.produceRequestSeconds.observe(ms / 1000);
      metrics.produceRequestRecords.observe(records);
    },
  }, { lanes, catalog, partitionForKey });
  const source = new KafkajsSource(
    kafkaClients(config.kafka, log, kafkaSecurity),
    config.kafka.consumer,
    log,
  );
  const topics = new TopicPolicy(config.topics);
  const hub = config.hub.enabled
    ? new BroadcastHub({ source, catalog, log }, {
      windowRecords: config.hub.windowRecords,
      windowBytes: config.hub.windowBytes,
      maxTopics: config.hub.maxTopics,
      maxCatchUpReaders: config.hub.maxCatchUpReaders,
      groupPrefix: config.kafka.consumer.groupPrefix,
      node,
    })
    : undefined;
  if (hub) metrics.watchHub(() => hub.stats());

  // The HA node drains through the server, which is built after it (it gates the server).
  const serverRef: { current?: BridgeServer } = {};
  let coordinator: Coordinator | undefined;
  if (haEnabled) {
    const url = config.ha.advertisedUrl;
    const created: HaNode = new HaNode(
      node,
      config.ha.priority,
      url,
      config.ha.mode === "file-lock" ? "lock" : "role",
      {
        activate: () => sink.activate(),
        deactivate: () => {
          dedupe?.standBy();
          return sink.deactivate();
        },
        dropProducer: () => void sink.abandon(),
        abandon: () => {
          dedupe?.standBy();
          return [...sink.abandon(), ...serverRef.current!.terminateSessions()];
        },
        isActive: () => sink.active,
        drain: (reason, deadline): Promise<void> => {
          const live: string | undefined = created.liveUrl;
          return serverRef.current!.closeSessions(
            Math.min(deadline, performance.now() + config.server.shutdownTimeoutMs),
            CloseCode.NOT_LIVE,
            live ? `live=${live}` : `stepped down: ${reason}`,
            {
              code: ErrorCode.NOT_LIVE,
              message: `this node is stepping down (${reason}); publish to the live`,
            },
            "background", // the next live need not wait for this node's group consumers to leave
          );
        },
      },
      metrics,
      log,
      { stepDownTimeoutMs: config.ha.stepDownTimeoutMs, activationTimeoutMs: config.ha.activationTimeoutMs },
    );
    ha = created;
    if (config.ha.mode === "heartbeat") {
      const marksTopic = dedupeTopic;
      const c = new HeartbeatCoordinator(
        config.ha,
        created,
        health,
        log,
        liveMarks && marksTopic
          ? {
            marks: liveMarks,
            write: (epoch, seq) =>
              sink.send({
                topic: marksTopic,
                key: new TextEncoder().encode(liveMarkKey(node)),
                value: encodeLiveMark(epoch, seq),
                headers: {},
              }),
          }
          : undefined,
      );
      await c.start();
      coordinator = c;
    } else {
      const c = new FileLockCoordinator(config.ha, created, health, log);
      await c.start();
      coordinator = c;
    }
  }
  const identity: NodeIdentity = ha ?? standaloneIdentity(node);
  const follower = dedupeTopic && dedupe
    ? followDedupeLog(dedupeTopic, dedupe, catalog, source, config, node, log, signal)
    : undefined;
  const expiry = dedupe && setInterval(() => dedupe.table.expire(Date.now()), 60_000);
  const isLive = () => ha?.isLive ?? true;

  const server = new BridgeServer(
    {
      config,
      identity,
      sink,
      source,
      catalog,
      topics,
      auth,
      metrics,
      log,
      kafkaUp: () => health.up,
      hub,
      dedupe,
      consumers: new ConsumerBudget(config.limits.maxConsumers),
    },
    {
      ready: () => ({
        ready: health.up && isLive(),
        detail: {
          node,
          role: identity.role(),
          epoch: identity.epoch(),
          kafka: health.up ? "up" : `down: ${health.lastError}`,
          ...(ha && !ha.isLive ? { live: ha.liveUrl ?? null } : {}),
        },
      }),
      metrics: () => metrics.render(),
    },
    { isLive, liveUrl: () => ha?.liveUrl },
    { certificate, knownHosts: knownHosts(config) },
  );
  serverRef.current = server;
  const { certFile, keyFile } = config.server.tls;
  // SIGHUP re-reads the certificate; without TLS it is logged and ignored, so
  // that a reload never stops the bridge, as SIGHUP's default action would.
  const stopReloading = reloadCertificateOnSighup(
    certFile && keyFile ? { certFile, keyFile } : undefined,
    (m) => server.reloadCertificate(m),
    log,
  );

  await health.check();
  const { host, port } = await server.listen();
  const url = `${server.secure ? "wss" : "ws"}://${
    host.includes(":") ? `[${host}]` : host
  }:${port}${config.server.path}`;
  log.info(
    { url, port, kafka: health.up ? "up" : "down", brokers: config.kafka.brokers, ha: config.ha.mode },
    "listening",
  );
  onListening?.({ url, port });
  if (systemd) {
    // Ready when this node serves its part: the live, or a backup that has announced itself
    // (so a starting pair is not "failed" while the backup waits, which is its job).
    const status = (role: string, epoch: number) => `${role}, epoch ${epoch}, ${url}`;
    const serving = (role: string) => role === "live" || role === "backup";
    if (!ha) systemd.ready(status("live", 0));
    else {
      if (serving(ha.role())) systemd.ready(status(ha.role(), ha.epoch()));
      ha.onRoleChange = (role, epoch) =>
        serving(role) ? systemd.ready(status(role, epoch)) : systemd.status(status(role, epoch));
    }
    systemd.startWatchdog();
  }

  const healthLoop = health.run(signal);
  const haLoop = coordinator?.run(signal);
  await new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });

  const deadline = performance.now() + config.server.shutdownTimeoutMs;
  systemd?.stopping(
    `draining: ${server.sessionCount} connections, ${server.inflightPublishes} publishes in flight`,
  );
  log.info(
    {
      sessions: server.sessionCount,
      inflight: server.inflightPublishes,
      timeoutMs: config.server.shutdownTimeoutMs,
    },
    "shutting down",
  );
  stopReloading();
  await haLoop; // a live hands over first (drains its sessions) when failover-on-shutdown is set
  await server.shutdown(deadline);
  await hub?.close();
  await sink.close();
  clearInterval(expiry);
  dedupe?.close();
  await (await follower)?.stop();
  await healthLoop;
  await catalog.close();
  await systemd?.close();
  log.info("stopped");
}

async function readSecurityFiles(
  config: Config,
): Promise<{ certificate?: CertificateMaterial; kafkaSecurity: KafkaSecurity }> {
  const problems: string[] = [];
  let certificate: CertificateMaterial | undefined;
  let kafkaSecurity: KafkaSecurity = {};
  const { certFile, keyFile } = config.server.tls;
  if (certFile && keyFile) {
    try {
      certificate = await readCertificateFiles({ certFile, keyFile });
    } catch (e) {
      problems.push(`server.tls: ${(e as Error).message}`);
    }
  }
  try {
    kafkaSecurity = await readKafkaSecurity(config.kafka);
  } catch (e) {
    if (!(e instanceof KafkaSecurityError)) throw e;
    problems.push(...e.problems);
  }
  if (problems.length) throw new ConfigError(problems);
  return { certificate, kafkaSecurity };
}

/** The auth config's key files are read now: a bad one stops the start, named (exit code 2). */
async function authenticator(config: Config, log: Logger): Promise<Authenticator> {
  let auth: Authenticator;
  try {
    auth = await Authenticator.fromConfig(config);
  } catch (e) {
    throw new ConfigError([`auth: ${(e as Error).message}`]);
  }
  const a = config.auth;
  if (auth.required && !auth.jwt && a.apiKeys.every((k) => k.revoked)) {
    log.warn(
      { host: config.server.host, anonymous: a.anonymous },
      "no JWT keys and no API keys are configured and anonymous access is off: every connection will be refused",
    );
  }
  if (auth.jwt && !a.jwt.audience) {
    log.warn(
      { issuer: a.jwt.issuer },
      "auth.jwt.audience is not set: a JWT these keys signed for any other service is accepted here too",
    );
  }
  const anonymous = auth.anonymousWarning;
  if (anonymous) log.warn({ anonymous: a.anonymous, host: config.server.host }, anonymous);
  return auth;
}

/** Names this bridge is reached by on purpose, so that its console served under them is its own page. */
function knownHosts(config: Config): string[] {
  const hosts = [config.server.host];
  try {
    hosts.push(Deno.hostname());
  } catch { /* no --allow-sys=hostname: IPs and localhost still work */ }
  if (config.ha.advertisedUrl) hosts.push(new URL(config.ha.advertisedUrl).hostname);
  return hosts;
}

/**
 * HA: creates the dedupe log when missing (compacted, and idle clients' windows expire with
 * the TTL), then follows it. Retries until Kafka answers; until then an activation's barrier
 * cannot be read back, so this node cannot become live, which is the safe side.
 */
async function followDedupeLog(
  topic: string,
  ledger: DedupeLedger,
  catalog: KafkajsCatalog,
  source: KafkajsSource,
  config: Config,
  node: string,
  log: Logger,
  signal: AbortSignal,
): Promise<LogFollower | undefined> {
  const ttl = config.dedupe.clientTtlMs;
  const configs = {
    "cleanup.policy": "compact,delete",
    "retention.ms": String(ttl),
    // Compaction and retention work on closed segments: close them often, so the log a new
    // node reads stays near one record per client.
    "segment.ms": String(Math.min(600_000, Math.max(60_000, Math.floor(ttl / 4)))),
    "min.cleanable.dirty.ratio": "0.1",
  };
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const found = await catalog.ensureTopic(topic, 1, configs);
      if (!(found["cleanup.policy"] ?? "").includes("compact")) {
        // Without compaction the log only grows, and a delete-only policy drops deltas still needed.
        throw new Error(
          `the dedupe log ${topic} exists with cleanup.policy=${found["cleanup.policy"] ?? "?"}; it needs ` +
            `"compact,delete" (kafka-configs --alter --add-config cleanup.policy=[compact,delete]) or another dedupe.topic`,
        );
      }
      const retention = Number(found["retention.ms"]);
      if (retention >= 0 && retention < ttl) {
        log.warn(
          { topic, retentionMs: retention, clientTtlMs: ttl },
          "the dedupe log deletes deltas sooner than dedupe.clientTtlMs: after a failover, resends older than " +
            "its retention.ms are written again; raise retention.ms on the topic",
        );
      }
      const follower = new LogFollower({
        source,
        topic,
        groupId: () => `${config.kafka.consumer.groupPrefix}dedupe.${node}.${crypto.randomUUID()}`,
        apply: (key, value, timestamp) => ledger.apply(key, value, timestamp),
        hold: () => ledger.hold(),
        log,
      });
      await follower.start();
      ledger.follower = follower;
      log.info({ topic }, "following the dedupe log");
      return follower;
    } catch (e) {
      if (attempt % 10 === 0) {
        log.warn({ topic, err: (e as Error).message }, "cannot open the dedupe log yet; retrying");
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
  return undefined;
}
