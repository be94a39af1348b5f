/**
 * A connection's subscriptions: subscribe, credit, commit and unsubscribe. Broadcast ones are
 * cursors of the fan-out hub (src/hub/); group ones, Kafka group members of their own.
 */
import type { SourceHandle } from "../kafka/types.ts";
import type { Logger } from "../observability/logger.ts";
import {
  type CommitFrame,
  type CreditFrame,
  ErrorCode,
  type ServerFrame,
  type SubscribeFrame,
  type UnsubscribeFrame,
} from "../protocol/mod.ts";
import { HubSubscription } from "./hub_subscription.ts";
import { asRequestError, RequestError } from "./request_error.ts";
import type { SessionDeps } from "./deps.ts";
import { Subscription } from "./subscription.ts";
import type { Transport } from "./transport.ts";
import type { Principal } from "../auth/principal.ts";
import { kafkaGroupId } from "../auth/namespaces.ts";
import type { SeriesHolder } from "../observability/bounded_series.ts";

/** What the subscriptions need from their connection. */
export interface SubscriptionsHost {
  readonly deps: SessionDeps;
  readonly transport: Transport;
  readonly log: Logger;
  send(frame: ServerFrame): void;
  error(code: ErrorCode, message: string, id?: string, sub?: string): void;
  /** Set while the connection drains: how new subscriptions are refused. */
  refusal(): { code: ErrorCode; message: string } | undefined;
  isClosed(): boolean;
  dropSlowConsumer(sub: string, reason: string): void;
  /** Who the connection is (known before any frame reaches the subscriptions). */
  principal(): Principal;
  /** Logs an authorisation refusal (once per code per connection). */
  refused(code: ErrorCode, message: string): void;
}

export class Subscriptions {
  readonly #subs = new Map<string, Subscription | HubSubscription>();
  /** What each subscription was authorised for: checked again when the principal's token is refreshed. */
  readonly #granted = new Map<string, { f: SubscribeFrame; kafkaTopic: string }>();
  readonly #commits = new Set<Promise<unknown>>();
  /** Subscriptions that run a Kafka consumer of their own (limits), each with its lag series. */
  readonly #consumers = new Map<string, SeriesHolder>();

  constructor(readonly host: SubscriptionsHost) {}

  /** Commits still waiting on Kafka (drain lets them finish). */
  get commitsInFlight(): Promise<unknown>[] {
    return [...this.#commits];
  }

  /** Ends every subscription (the connection is draining or gone). */
  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.#subs.keys()].map((s) => this.stop(s)));
  }

  async subscribe(f: SubscribeFrame): Promise<void> {
    const { config, topics, catalog, metrics } = this.host.deps;
    const refusal = this.host.refusal();
    if (refusal) return this.host.error(refusal.code, refusal.message, f.id, f.sub);
    if (this.#subs.has(f.sub)) {
      return this.host.error(
        ErrorCode.DUPLICATE_SUBSCRIPTION,
        `subscription "${f.sub}" already exists on this connection`,
        f.id,
        f.sub,
      );
    }
    if (this.#subs.size >= config.server.maxSubscriptions) {
      return this.host.error(
        ErrorCode.TOO_MANY_SUBSCRIPTIONS,
        `at most ${config.server.maxSubscriptions} subscriptions per connection`,
        f.id,
        f.sub,
      );
    }
    const decision = topics.resolve(f.topic);
    if (!decision.ok) return this.host.error(decision.code, decision.message, f.id, f.sub);
    const denied = this.#authorize(f, decision.kafkaTopic);
    if (denied) {
      this.host.refused(denied.code, denied.message);
      return this.host.error(denied.code, denied.message, f.id, f.sub);
    }
    const slow = config.server.slowConsumer;
    const hub = f.mode === "broadcast" ? this.host.deps.hub : undefined;
    if (!hub) {
      const over = this.#takeConsumer(f.sub);
      if (over) {
        this.host.refused(over.code, over.message);
        return this.host.error(over.code, over.message, f.id, f.sub);
      }
    }
    const subscription = hub
      ? new HubSubscription(f.sub, f.topic, f.encoding, f.credit, {
        maxCredit: config.server.maxCredit,
        maxBufferedBytes: slow.maxBufferedBytes,
        stall: slow.policy === "disconnect"
          ? {
            timeoutMs: slow.stallTimeoutMs,
            onStalled: (reason) => this.host.dropSlowConsumer(f.sub, reason),
          }
          : undefined,
      }, {
        sendText: (text) => {
          metrics.deliveries.inc();
          if (!this.host.isClosed()) this.host.transport.send(text);
        },
        bufferedAmount: () => this.host.transport.bufferedAmount(),
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
          this.host.send(frame);
        },
        bufferedAmount: () => this.host.transport.bufferedAmount(),
        serving: () => this.host.deps.identity.role() === "live",
        onStalled: (reason) => this.host.dropSlowConsumer(f.sub, reason),
        onPendingChange: (d) => metrics.pendingDeliveries.inc(d),
      });
    this.#subs.set(f.sub, subscription);
    this.#granted.set(f.sub, { f, kafkaTopic: decision.kafkaTopic });
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
      let handle: SourceHandle, start: Record<string, string> | undefined;
      if (subscription instanceof HubSubscription) {
        handle = await subscription.open(hub!, decision.kafkaTopic, f.from);
        start = subscription.start;
      } else {
        ({ handle, start } = await this.#openConsumer(f, decision.kafkaTopic, subscription, startOffsets));
      }
      if (subscription.stopped || this.host.isClosed()) {
        await handle.stop();
        return;
      }
      subscription.handle = handle;
      metrics.subscriptions.inc();
      this.host.log.debug(
        { sub: f.sub, topic: f.topic, mode: f.mode, group: f.group, from: f.from },
        "subscribed",
      );
      this.host.send({
        op: "subscribed",
        id: f.id,
        sub: f.sub,
        topic: f.topic,
        mode: f.mode,
        group: f.group,
        ...(f.mode === "broadcast" && start ? { start } : {}),
      });
      if (subscription instanceof HubSubscription) subscription.begin(); // messages only after "subscribed"
    } catch (e) {
      subscription.stop();
      this.#subs.delete(f.sub);
      this.#granted.delete(f.sub);
      this.#giveConsumer(f.sub);
      const err = asRequestError(e);
      this.host.error(err.code, err.message, f.id, f.sub);
    }
  }

  /** Why the principal may not make this subscription, or undefined when it may. */
  #authorize(f: SubscribeFrame, kafkaTopic: string): { code: ErrorCode; message: string } | undefined {
    const p = this.host.principal();
    if (!p.permissions.maySubscribe(kafkaTopic)) {
      return { code: ErrorCode.SUBSCRIBE_DENIED, message: `"${p.id}" may not subscribe to "${f.topic}"` };
    }
    if (f.mode === "group" && !p.permissions.mayJoin(f.group!)) {
      return { code: ErrorCode.GROUP_DENIED, message: `"${p.id}" may not join group "${f.group}"` };
    }
    return undefined;
  }

  /**
   * The principal changed (a refreshed token, which may allow less): ends each subscription its
   * permissions no longer allow, as the bridge ends one by itself: an `error` naming the sub with
   * SUBSCRIBE_DENIED (or GROUP_DENIED), then `unsubscribed` with a reason. The others go on.
   */
  async recheck(): Promise<void> {
    const denied = [...this.#granted].flatMap(([sub, { f, kafkaTopic }]) => {
      const refusal = this.#authorize(f, kafkaTopic);
      return refusal ? [{ sub, ...refusal }] : [];
    });
    await Promise.allSettled(denied.map(async ({ sub, code, message }) => {
      this.host.refused(code, message);
      await this.stop(sub);
      const reason = `${message}: the refreshed token no longer allows this subscription`;
      this.host.error(code, reason, undefined, sub);
      this.host.send({ op: "unsubscribed", sub, reason });
    }));
  }

  /** The Kafka group of a group subscription: the principal's own (auth.namespaceGroups). */
  #kafkaGroup(group: string): string {
    return kafkaGroupId(group, this.host.principal(), this.host.deps.config);
  }

  /**
   * Counts a Kafka consumer for `sub` against the connection's and the bridge's limits; the
   * refusal when either is reached. Hub subscribers share one reader and are not counted.
   */
  #takeConsumer(sub: string): { code: ErrorCode; message: string } | undefined {
    const { config, consumers, metrics } = this.host.deps;
    const perConnection = config.limits.maxConsumersPerConnection;
    if (perConnection > 0 && this.#consumers.size >= perConnection) {
      return {
        code: ErrorCode.TOO_MANY_CONSUMERS,
        message: `at most ${perConnection} Kafka consumers (group subscriptions, or broadcast ones ` +
          `without the hub) per connection (limits.maxConsumersPerConnection)`,
      };
    }
    if (consumers && !consumers.tryTake()) {
      return {
        code: ErrorCode.BRIDGE_CONSUMERS_FULL,
        message: `the bridge runs its limit of ${consumers.max} Kafka consumers for clients ` +
          `(limits.maxConsumers); retry later`,
      };
    }
    this.#consumers.set(sub, metrics.lagSeries.holder());
    return undefined;
  }

  /** Gives back `sub`'s consumer, if it had one, and removes its lag series. */
  #giveConsumer(sub: string): void {
    this.#takeConsumerSlot(sub)?.();
  }

  /**
   * Takes the subscription's Kafka consumer off this connection's books; the function returned gives
   * its place in the bridge's budget back. A consumer that is still leaving its group still costs a
   * member and connections, so a stop gives it back only once the consumer is gone.
   */
  #takeConsumerSlot(sub: string): (() => void) | undefined {
    const lag = this.#consumers.get(sub);
    if (!lag) return undefined;
    this.#consumers.delete(sub);
    return () => {
      lag.release();
      this.host.deps.consumers?.give();
    };
  }

  /** A Kafka consumer of the subscription's own: group members, and broadcast without the hub. */
  async #openConsumer(
    f: SubscribeFrame,
    kafkaTopic: string,
    subscription: Subscription,
    startOffsets: Record<string, string> | undefined,
  ): Promise<{ handle: SourceHandle; start?: Record<string, string> }> {
    const { config, catalog, source } = this.host.deps;
    if (f.from.kind === "timestamp") {
      startOffsets = await catalog.offsetsForTimestamp(kafkaTopic, f.from.timestamp);
    } else if (f.from.kind === "latest" && f.mode === "broadcast") {
      // Pin "latest" now, so every message published after "subscribed" is delivered.
      startOffsets = await catalog.endOffsets(kafkaTopic);
    } else if (f.from.kind === "offsets" && f.mode === "broadcast") {
      // Partitions not named start at the latest offset: pin them too, for the "subscribed" frame.
      startOffsets = { ...await catalog.endOffsets(kafkaTopic), ...startOffsets };
    }
    const prefix = config.kafka.consumer.groupPrefix;
    const groupId = f.mode === "group"
      ? this.#kafkaGroup(f.group!)
      : `${prefix}broadcast.${this.host.deps.identity.node}.${crypto.randomUUID()}`;
    // "latest" and "timestamp" pin every partition the topic has: one that appears later is new.
    const newPartitionsFromStart = f.mode === "broadcast" &&
      (f.from.kind === "latest" || f.from.kind === "timestamp");
    if (f.mode === "group") subscription.kafkaGroup = { groupId, topic: kafkaTopic };
    const handle = await source.open(
      { topic: kafkaTopic, mode: f.mode, groupId, from: f.from, startOffsets, newPartitionsFromStart },
      subscription.deliver,
      {
        onLag: (partition, lag) =>
          this.#consumers.get(f.sub)?.set({ topic: kafkaTopic, partition, group: f.group ?? "" }, lag),
        onFatal: (e) => this.#end(f.sub, `Kafka consumer failed: ${e.message}`),
        onAssignment: (partitions) => subscription.assign(partitions),
      },
    );
    return { handle, start: f.mode === "broadcast" ? startOffsets : undefined };
  }

  credit(f: CreditFrame): void {
    const s = this.#subs.get(f.sub);
    if (!s) {
      return this.host.error(
        ErrorCode.UNKNOWN_SUBSCRIPTION,
        `no subscription "${f.sub}" on this connection`,
        f.id,
        f.sub,
      );
    }
    s.grant(f.n);
  }

  async commit(f: CommitFrame): Promise<void> {
    const s = this.#subs.get(f.sub);
    if (!s || !s.handle) {
      return this.host.error(
        ErrorCode.UNKNOWN_SUBSCRIPTION,
        `no active subscription "${f.sub}"`,
        f.id,
        f.sub,
      );
    }
    if (s.mode !== "group") {
      return this.host.error(
        ErrorCode.BAD_FIELD,
        "commit needs a group subscription; broadcast subscribers resume from offsets they keep",
        f.id,
        f.sub,
      );
    }
    if (this.host.deps.identity.role() !== "live") {
      // HA: a group commit from a node that is no longer (or may no longer be) the live could
      // move the group past records the new live's members have not processed.
      return this.host.error(
        ErrorCode.NOT_LIVE,
        "this node is not the live; commit on the live",
        f.id,
        f.sub,
      );
    }
    let refusal = s.mayCommit(f.partition, f.offset);
    if (refusal) {
      // A client that reconnected commits what it processed before (its commit's answer was lost
      // with the link). Kafka may hold that commit already: then it is answered, and nothing moves.
      if (await this.#alreadyCommitted(s, f.partition, f.offset)) {
        this.host.send({ op: "committed", id: f.id, sub: f.sub, partition: f.partition, offset: f.offset });
        return;
      }
      // The group may have delivered the message while Kafka was asked. A refusal sent now would
      // reach the client after that message, and the client would wait for a redelivery that
      // never comes: the commit stays pending for good. So the refusal is checked again.
      refusal = s.mayCommit(f.partition, f.offset);
      if (refusal) {
        this.host.refused(refusal.code, refusal.message);
        return this.host.error(refusal.code, refusal.message, f.id, f.sub);
      }
    }
    const { sink, config } = this.host.deps;
    // HA: in the pair's transaction, so that a zombie's commit is fenced like its writes.
    const done = config.ha.mode !== "none" && sink.commitOffset && s.kafkaGroup
      ? sink.commitOffset({
        groupId: s.kafkaGroup.groupId,
        topic: s.kafkaGroup.topic,
        partition: f.partition,
        next: (BigInt(f.offset) + 1n).toString(),
      })
      : s.handle.commit(f.partition, f.offset);
    this.#commits.add(done);
    try {
      await done;
      this.host.send({ op: "committed", id: f.id, sub: f.sub, partition: f.partition, offset: f.offset });
    } catch (e) {
      const err = asRequestError(e);
      this.host.error(err.code, `commit failed: ${err.message}`, f.id, f.sub);
    } finally {
      this.#commits.delete(done);
    }
  }

  /** The group's committed offset (the next to read) is past `offset`: that commit is done. */
  async #alreadyCommitted(s: Subscription, partition: number, offset: string): Promise<boolean> {
    if (!s.kafkaGroup) return false;
    try {
      const next = await this.host.deps.catalog.groupCommitted(
        s.kafkaGroup.groupId,
        s.kafkaGroup.topic,
        partition,
      );
      return next !== undefined && BigInt(next) > BigInt(offset);
    } catch {
      return false; // cannot tell: the refusal stands
    }
  }

  async unsubscribe(f: UnsubscribeFrame): Promise<void> {
    if (!this.#subs.has(f.sub)) {
      return this.host.error(
        ErrorCode.UNKNOWN_SUBSCRIPTION,
        `no subscription "${f.sub}" on this connection`,
        f.id,
        f.sub,
      );
    }
    await this.stop(f.sub);
    this.host.send({ op: "unsubscribed", id: f.id, sub: f.sub });
  }

  /** Ends one subscription and lets go of what it holds in Kafka. */
  async stop(sub: string): Promise<void> {
    const s = this.#subs.get(sub);
    if (!s) return;
    this.#subs.delete(sub);
    this.#granted.delete(sub);
    s.stop();
    const giveBack = this.#takeConsumerSlot(sub);
    if (!s.handle) return giveBack?.();
    this.host.deps.metrics.subscriptions.dec();
    try {
      await s.handle.stop();
    } finally {
      giveBack?.();
    }
  }

  async #end(sub: string, reason: string): Promise<void> {
    await this.stop(sub);
    this.host.error(ErrorCode.KAFKA_UNAVAILABLE, reason, undefined, sub);
    this.host.send({ op: "unsubscribed", sub, reason });
  }
}
