/**
 * One client connection: parses frames, runs the publish pipeline (ack only after
 * Kafka has the record) and owns the connection's subscriptions. It knows nothing
 * of WebSocket libraries (see Transport) nor of kafkajs (see src/kafka/types.ts).
 */
import type { Config } from "../config/schema.ts";
import type { BroadcastHub } from "../hub/hub.ts";
import type { KafkaCatalog, KafkaSink, KafkaSource, RecordPosition, SourceHandle } from "../kafka/types.ts";
import type { BridgeMetrics } from "../observability/metrics.ts";
import type { Logger } from "../observability/logger.ts";
import {
  CloseCode,
  type CommitFrame,
  type CreditFrame,
  encodePayload,
  ErrorCode,
  type PublishFrame,
  type ServerFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
} from "../protocol/mod.ts";
import { parseClientFrame, PROTOCOL_VERSION, RETRYABLE } from "../protocol/mod.ts";
import { asRequestError, RequestError } from "./request_error.ts";
import { HubSubscription } from "./hub_subscription.ts";
import { Subscription } from "./subscription.ts";
import type { TopicPolicy } from "./topics.ts";
import type { Transport } from "./transport.ts";

/** Who this node is right now; HA supplies role and epoch. */
export interface NodeIdentity {
  readonly node: string;
  role(): string;
  epoch(): number;
}

export interface SessionDeps {
  config: Config;
  identity: NodeIdentity;
  sink: KafkaSink;
  source: KafkaSource;
  catalog: KafkaCatalog;
  topics: TopicPolicy;
  metrics: BridgeMetrics;
  log: Logger;
  /** False while the health probe finds Kafka unreachable: publishes then fail fast instead of timing out. */
  kafkaUp(): boolean;
  /** Serves broadcast subscriptions from one reader per topic; without it each has a consumer of its own. */
  hub?: BroadcastHub;
}

export class Session {
  readonly id = crypto.randomUUID();
  #clientId: string;
  /** Called when the last unanswered publish is answered (drain waits on it). */
  #idle?: () => void;
  readonly #subs = new Map<string, Subscription | HubSubscription>();
  readonly #commits = new Set<Promise<unknown>>();
  /**
   * One entry per publish still waiting on Kafka (its size is the in-flight count);
   * calling it nacks the publish, which shutdown does when it runs out of time.
   */
  readonly #unanswered = new Set<() => void>();
  /** Set while draining: how new work is refused (shutdown, or an HA handover). */
  #refusal?: { code: ErrorCode; message: string };
  #closed = false;
  readonly #log: Logger;

  constructor(readonly transport: Transport, readonly deps: SessionDeps) {
    this.#clientId = this.id;
    this.#log = deps.log.child({ session: this.id });
  }

  get inflight(): number {
    return this.#unanswered.size;
  }

  /** Greets the client; the first frame on every connection. */
  start(): void {
    const { config, identity } = this.deps;
    this.#send({
      op: "welcome",
      v: PROTOCOL_VERSION,
      node: identity.node,
      role: identity.role(),
      epoch: identity.epoch(),
      session: this.id,
      limits: {
        maxFrameBytes: config.server.maxFrameBytes,
        maxInflightPublishes: config.server.maxInflightPublishes,
        maxSubscriptions: config.server.maxSubscriptions,
        maxCredit: config.server.maxCredit,
      },
    });
  }

  #send(frame: ServerFrame): void {
    if (!this.#closed) this.transport.send(JSON.stringify(frame));
  }

  #error(code: ErrorCode, message: string, id?: string, sub?: string): void {
    this.deps.metrics.frameErrors.inc({ code });
    this.#log.debug({ code, id, sub }, message);
    this.#send({ op: "error", id, sub, code, message, retryable: RETRYABLE[code] });
  }

  #nack(id: string, code: ErrorCode, message: string): void {
    this.deps.metrics.nacks.inc({ code });
    this.#send({ op: "nack", id, code, message, retryable: RETRYABLE[code] });
  }

  /** A frame too large to parse; refused without closing the connection. */
  rejectOversized(bytes: number): void {
    this.#error(
      ErrorCode.FRAME_TOO_LARGE,
      `frame of ${bytes} bytes exceeds the limit of ${this.deps.config.server.maxFrameBytes}`,
    );
  }

  rejectBinary(): void {
    this.#error(
      ErrorCode.BAD_FRAME,
      "binary frames are not part of protocol v1; send base64 in a text frame",
    );
  }

  handleText(text: string): void {
    const parsed = parseClientFrame(text, { maxCredit: this.deps.config.server.maxCredit });
    if (!parsed.ok) {
      if (parsed.op === "publish" && parsed.id !== undefined) {
        this.deps.metrics.publishes.inc();
        this.#nack(parsed.id, parsed.code, parsed.message);
      } else {
        this.#error(parsed.code, parsed.message, parsed.id);
      }
      return;
    }
    const f = parsed.frame;
    switch (f.op) {
      case "hello":
        this.#clientId = f.clientId;
        this.#log.debug({ clientId: f.clientId, lastEpoch: f.lastEpoch }, "client hello");
        this.#send({ op: "hello_ok", id: f.id, clientId: f.clientId, epoch: this.deps.identity.epoch() });
        return;
      case "publish":
        return this.#publish(f);
      case "subscribe":
        void this.#subscribe(f);
        return;
      case "credit":
        return this.#credit(f);
      case "commit":
        void this.#commit(f);
        return;
      case "unsubscribe":
        void this.#unsubscribe(f);
        return;
      case "ping":
        this.#send({ op: "pong", id: f.id });
        return;
    }
  }

  #publish(f: PublishFrame): void {
    const { metrics, config } = this.deps;
    metrics.publishes.inc();
    if (this.#refusal) return this.#nack(f.id, this.#refusal.code, this.#refusal.message);
    if (this.#unanswered.size >= config.server.maxInflightPublishes) {
      return this.#nack(
        f.id,
        ErrorCode.TOO_MANY_INFLIGHT,
        `more than ${config.server.maxInflightPublishes} publishes awaiting acks; wait for acks before sending more`,
      );
    }
    const started = performance.now();
    let answered = false;
    const answer = (send: () => void) => {
      if (answered) return;
      answered = true;
      this.#unanswered.delete(abandon);
      send();
      if (this.#unanswered.size === 0) this.#idle?.();
    };
    const abandon = () =>
      answer(() =>
        this.#nack(
          f.id,
          ErrorCode.KAFKA_TIMEOUT,
          "Kafka had not confirmed the record when the bridge shut down; it may or may not be written",
        )
      );
    this.#unanswered.add(abandon);
    const epoch = this.deps.identity.epoch();
    let pending: Promise<RecordPosition>;
    try {
      pending = this.#admit(f, epoch);
    } catch (e) {
      pending = Promise.reject(e);
    }
    pending.then((pos) =>
      answer(() => {
        metrics.acks.inc();
        metrics.publishLatency.observe((performance.now() - started) / 1000);
        this.#send({
          op: "ack",
          id: f.id,
          topic: f.topic,
          partition: pos.partition,
          offset: pos.offset,
          epoch,
        });
      }), (e) => {
      const err = asRequestError(e);
      if (err.code === ErrorCode.INTERNAL) this.#log.error({ err: e }, "publish failed");
      answer(() => this.#nack(f.id, err.code, err.message));
    });
  }

  /**
   * Checks the publish and queues it in the sink, synchronously, so each client's
   * publishes reach the sink in order. The sink checks the topic exists (it needs
   * its partitions anyway). Settles when Kafka answers.
   */
  #admit(f: PublishFrame, epoch: number): Promise<RecordPosition> {
    const { topics, sink, identity } = this.deps;
    const decision = topics.resolve(f.topic);
    if (!decision.ok) throw new RequestError(decision.code, decision.message);
    if (!this.deps.kafkaUp()) {
      throw new RequestError(
        ErrorCode.KAFKA_UNAVAILABLE,
        "Kafka is unreachable from this bridge; retry later",
      );
    }
    return sink.send({
      topic: decision.kafkaTopic,
      partition: f.partition,
      key: f.key === undefined ? undefined : encodePayload(f.key, f.keyEncoding),
      value: encodePayload(f.value, f.encoding),
      headers: {
        ...f.headers,
        "eb-message-id": `${this.#clientId}:${f.id}`,
        "eb-client-id": this.#clientId,
        "eb-node": identity.node,
        "eb-epoch": String(epoch),
      },
    });
  }

  async #subscribe(f: SubscribeFrame): Promise<void> {
    const { config, topics, catalog, metrics } = this.deps;
    if (this.#refusal) return this.#error(this.#refusal.code, this.#refusal.message, f.id, f.sub);
    if (this.#subs.has(f.sub)) {
      return this.#error(
        ErrorCode.DUPLICATE_SUBSCRIPTION,
        `subscription "${f.sub}" already exists on this connection`,
        f.id,
        f.sub,
      );
    }
    if (this.#subs.size >= config.server.maxSubscriptions) {
      return this.#error(
        ErrorCode.TOO_MANY_SUBSCRIPTIONS,
        `at most ${config.server.maxSubscriptions} subscriptions per connection`,
        f.id,
        f.sub,
      );
    }
    const decision = topics.resolve(f.topic);
    if (!decision.ok) return this.#error(decision.code, decision.message, f.id, f.sub);
    const slow = config.server.slowConsumer;
    const hub = f.mode === "broadcast" ? this.deps.hub : undefined;
    const subscription = hub
      ? new HubSubscription(f.sub, f.topic, f.encoding, f.credit, {
        maxCredit: config.server.maxCredit,
        maxBufferedBytes: slow.maxBufferedBytes,
        stall: slow.policy === "disconnect"
          ? { timeoutMs: slow.stallTimeoutMs, onStalled: (reason) => this.#dropSlowConsumer(f.sub, reason) }
          : undefined,
      }, {
        sendText: (text) => {
          metrics.deliveries.inc();
          if (!this.#closed) this.transport.send(text);
        },
        bufferedAmount: () => this.transport.bufferedAmount(),
        onPendingChange: (d) => metrics.pendingDeliveries.inc(d),
      })
      : new Subscription(f.sub, f.topic, f.mode, f.encoding, f.credit, {
        maxCredit: config.server.maxCredit,
        maxBufferedBytes: slow.maxBufferedBytes,
        policy: slow.policy,
        stallTimeoutMs: slow.stallTimeoutMs,
      }, {
        send: (frame) => {
          metrics.deliveries.inc();
          this.#send(frame);
        },
        bufferedAmount: () => this.transport.bufferedAmount(),
        onStalled: (reason) => this.#dropSlowConsumer(f.sub, reason),
        onPendingChange: (d) => metrics.pendingDeliveries.inc(d),
      });
    this.#subs.set(f.sub, subscription);
    try {
      const info = await catalog.topic(decision.kafkaTopic);
      if (!info) throw new RequestError(ErrorCode.UNKNOWN_TOPIC, `topic "${f.topic}" does not exist`);
      let startOffsets: Record<string, string> | undefined;
      if (f.from.kind === "offsets") {
        for (const p of Object.keys(f.from.offsets)) {
          if (Number(p) >= info.partitions) {
            throw new RequestError(
              ErrorCode.BAD_OFFSET,
              `topic "${f.topic}" has partitions 0 to ${info.partitions - 1}, not ${p}`,
            );
          }
        }
        startOffsets = f.from.offsets;
      }
      const handle = subscription instanceof HubSubscription
        ? await subscription.open(hub!, decision.kafkaTopic, f.from)
        : await this.#openConsumer(f, decision.kafkaTopic, subscription, startOffsets);
      if (subscription.stopped || this.#closed) {
        await handle.stop();
        return;
      }
      subscription.handle = handle;
      metrics.subscriptions.inc();
      this.#log.debug(
        { sub: f.sub, topic: f.topic, mode: f.mode, group: f.group, from: f.from },
        "subscribed",
      );
      this.#send({ op: "subscribed", id: f.id, sub: f.sub, topic: f.topic, mode: f.mode, group: f.group });
      if (subscription instanceof HubSubscription) subscription.begin(); // messages only after "subscribed"
    } catch (e) {
      subscription.stop();
      this.#subs.delete(f.sub);
      const err = asRequestError(e);
      this.#error(err.code, err.message, f.id, f.sub);
    }
  }

  /** A Kafka consumer of the subscription's own: group members, and broadcast without the hub. */
  async #openConsumer(
    f: SubscribeFrame,
    kafkaTopic: string,
    subscription: Subscription,
    startOffsets: Record<string, string> | undefined,
  ): Promise<SourceHandle> {
    const { config, catalog, source, metrics } = this.deps;
    if (f.from.kind === "timestamp") {
      startOffsets = await catalog.offsetsForTimestamp(kafkaTopic, f.from.timestamp);
    } else if (f.from.kind === "latest" && f.mode === "broadcast") {
      // Pin "latest" now, so every message published after "subscribed" is delivered.
      startOffsets = await catalog.endOffsets(kafkaTopic);
    }
    const prefix = config.kafka.consumer.groupPrefix;
    const groupId = f.mode === "group"
      ? prefix + f.group
      : `${prefix}broadcast.${this.deps.identity.node}.${crypto.randomUUID()}`;
    // "latest" and "timestamp" pin every partition the topic has: one that appears later is new.
    const newPartitionsFromStart = f.mode === "broadcast" &&
      (f.from.kind === "latest" || f.from.kind === "timestamp");
    return await source.open(
      { topic: kafkaTopic, mode: f.mode, groupId, from: f.from, startOffsets, newPartitionsFromStart },
      subscription.deliver,
      {
        onLag: (partition, lag) =>
          metrics.consumerLag.set({ topic: kafkaTopic, partition, group: f.group ?? "" }, lag),
        onFatal: (e) => this.#endSubscription(f.sub, `Kafka consumer failed: ${e.message}`),
      },
    );
  }

  #credit(f: CreditFrame): void {
    const s = this.#subs.get(f.sub);
    if (!s) {
      return this.#error(
        ErrorCode.UNKNOWN_SUBSCRIPTION,
        `no subscription "${f.sub}" on this connection`,
        f.id,
        f.sub,
      );
    }
    s.grant(f.n);
  }

  async #commit(f: CommitFrame): Promise<void> {
    const s = this.#subs.get(f.sub);
    if (!s || !s.handle) {
      return this.#error(ErrorCode.UNKNOWN_SUBSCRIPTION, `no active subscription "${f.sub}"`, f.id, f.sub);
    }
    if (s.mode !== "group") {
      return this.#error(
        ErrorCode.BAD_FIELD,
        "commit needs a group subscription; broadcast subscribers resume from offsets they keep",
        f.id,
        f.sub,
      );
    }
    const done = s.handle.commit(f.partition, f.offset);
    this.#commits.add(done);
    try {
      await done;
      this.#send({ op: "committed", id: f.id, sub: f.sub, partition: f.partition, offset: f.offset });
    } catch (e) {
      const err = asRequestError(e);
      this.#error(err.code, `commit failed: ${err.message}`, f.id, f.sub);
    } finally {
      this.#commits.delete(done);
    }
  }

  async #unsubscribe(f: UnsubscribeFrame): Promise<void> {
    if (!this.#subs.has(f.sub)) {
      return this.#error(
        ErrorCode.UNKNOWN_SUBSCRIPTION,
        `no subscription "${f.sub}" on this connection`,
        f.id,
        f.sub,
      );
    }
    await this.#stopSubscription(f.sub);
    this.#send({ op: "unsubscribed", id: f.id, sub: f.sub });
  }

  async #stopSubscription(sub: string): Promise<void> {
    const s = this.#subs.get(sub);
    if (!s) return;
    this.#subs.delete(sub);
    s.stop();
    if (s.handle) {
      this.deps.metrics.subscriptions.dec();
      await s.handle.stop();
    }
  }

  async #endSubscription(sub: string, reason: string): Promise<void> {
    await this.#stopSubscription(sub);
    this.#error(ErrorCode.KAFKA_UNAVAILABLE, reason, undefined, sub);
    this.#send({ op: "unsubscribed", sub, reason });
  }

  #dropSlowConsumer(sub: string, reason: string): void {
    this.#log.info({ sub, reason }, "disconnecting slow consumer");
    this.#error(ErrorCode.SLOW_CONSUMER, `disconnected: ${reason}`, undefined, sub);
    this.transport.close(CloseCode.SLOW_CONSUMER, "slow consumer");
    void this.closed();
  }

  /**
   * Graceful end: refuse new work, let in-flight publishes get their ack or nack
   * (bounded by `deadline`), finish client commits, leave consumer groups cleanly.
   */
  async drain(
    deadline: number,
    refusal = {
      code: ErrorCode.SHUTTING_DOWN as ErrorCode,
      message: "the bridge is shutting down; publish to another node",
    },
  ): Promise<void> {
    this.#refusal = refusal;
    if (this.#unanswered.size > 0) {
      const idle = new Promise<void>((r) => (this.#idle = r));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        idle,
        new Promise((r) => (timer = setTimeout(r, Math.max(0, deadline - performance.now())))),
      ]);
      clearTimeout(timer);
    }
    for (const abandon of [...this.#unanswered]) abandon();
    await Promise.allSettled([...this.#commits]);
    await Promise.allSettled([...this.#subs.keys()].map((s) => this.#stopSubscription(s)));
  }

  /** The socket is gone: stop deliveries. In-flight publishes still complete in Kafka. */
  async closed(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([...this.#subs.keys()].map((s) => this.#stopSubscription(s)));
  }
}
