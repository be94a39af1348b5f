/**
 * One client connection: parses frames, runs the publish pipeline (ack only after
 * Kafka has the record) and owns the connection's subscriptions (subscriptions.ts). It knows nothing
 * of WebSocket libraries (see Transport) nor of kafkajs (see src/kafka/types.ts).
 */
import type { DedupeLedger } from "../dedupe/ledger.ts";
import type { WrittenAt } from "../dedupe/table.ts";
import type { RecordPosition } from "../kafka/types.ts";
import type { SessionDeps } from "./deps.ts";
import type { Logger } from "../observability/logger.ts";
import { CloseCode, encodePayload, ErrorCode, type PublishFrame, type ServerFrame } from "../protocol/mod.ts";
import { parseClientFrame, PROTOCOL_VERSION, RETRYABLE } from "../protocol/mod.ts";
import { asRequestError, RequestError } from "./request_error.ts";
import { Subscriptions } from "./subscriptions.ts";
import type { Transport } from "./transport.ts";
import { AuthGate } from "./auth_gate.ts";
import { TokenBucket } from "../limits/rate.ts";
import type { Principal } from "../auth/principal.ts";
import { type Peer, UNKNOWN_PEER } from "../auth/peer.ts";
import { clientIdRefusal } from "../auth/namespaces.ts";
import { settlesWithin } from "../util/deadline.ts";

export type { NodeIdentity, SessionDeps } from "./deps.ts";

/** How long each step of a session's drain took: a slow step-down names what it waited for. */
export interface DrainTimes {
  /** Until every publish in flight was answered (or the deadline). */
  publishesMs: number;
  /** Until the group commits in flight were answered. */
  commitsMs: number;
  /** Until the subscriptions stopped (a group consumer leaves its group); 0 when left to the background. */
  subscriptionsMs: number;
  /** Settles once every subscription has stopped (already, unless left to the background). */
  stopped: Promise<void>;
}

export class Session {
  readonly id = crypto.randomUUID();
  #clientId: string;
  /** Whose `seq`s these are (set by a hello): the clientId, and the instance when named. */
  #sequenceOwner?: string;
  /** A hello was answered on this connection. */
  #introduced = false;
  /** The hello's instance (this run of the client), when it named one. */
  #instance?: string;
  /** Called when the last unanswered publish is answered (drain waits on it). */
  #idle?: () => void;
  readonly #subscriptions: Subscriptions;
  /**
   * One entry per publish still waiting on Kafka (its size is the in-flight count);
   * calling it nacks the publish, which shutdown does when it runs out of time.
   */
  readonly #unanswered = new Set<() => void>();
  /** Set while draining: how new work is refused (shutdown, or an HA handover). */
  #refusal?: { code: ErrorCode; message: string };
  #closed = false;
  readonly #log: Logger;
  readonly #gate: AuthGate;
  /** Refusal codes already logged on this connection: each is logged once, not once per frame. */
  readonly #loggedRefusals = new Set<ErrorCode>();
  /** limits.publishesPerSecond for this connection. */
  readonly #publishRate: TokenBucket;

  /** `token`: what the handshake carried (the "bearer.<token>" subprotocol), if anything. */
  /** `peer`: where the connection comes from (anonymous access and failed-auth limits depend on it). */
  constructor(
    readonly transport: Transport,
    readonly deps: SessionDeps,
    readonly token?: string,
    readonly peer: Peer = UNKNOWN_PEER,
  ) {
    this.#clientId = this.id;
    this.#publishRate = new TokenBucket(deps.config.limits.publishesPerSecond);
    this.#log = deps.log.child({ session: this.id });
    this.#gate = new AuthGate({
      auth: deps.auth,
      peer,
      maxPreAuthBytes: deps.config.auth.maxPreAuthBytes,
      timeoutMs: deps.config.auth.timeoutMs,
      expiryWarningMs: deps.config.auth.expiryWarningMs,
      maxCredit: deps.config.server.maxCredit,
      send: (frame) => this.#send(frame),
      error: (code, message, id) => this.#error(code, message, id),
      refuse: (code, message, closeCode) => {
        this.#refused(code, message);
        this.#error(code, message);
        this.transport.close(closeCode, code);
        void this.closed();
      },
      admitted: (principal, held) => {
        this.#welcome(principal);
        for (const frame of held) {
          if (typeof frame === "string") this.handleText(frame);
          else frame(); // the error of a binary or oversized frame, after welcome
        }
      },
      helloDone: () => this.#introduced,
      // A refreshed token may allow less: subscriptions it no longer allows end now, not at reconnect.
      reauthenticated: () => void this.#subscriptions.recheck(),
    });
    this.#subscriptions = new Subscriptions({
      deps,
      transport,
      log: this.#log,
      send: (frame) => this.#send(frame),
      error: (code, message, id, sub) => this.#error(code, message, id, sub),
      refusal: () => this.#refusal,
      isClosed: () => this.#closed,
      dropSlowConsumer: (sub, reason) => this.#dropSlowConsumer(sub, reason),
      principal: () => this.#gate.principal!,
      refused: (code, message) => this.#refused(code, message),
    });
  }

  /** Who this connection is; undefined until authentication finished. */
  get principal(): Principal | undefined {
    return this.#gate.principal;
  }

  /** Logs an authorisation refusal once per code per connection (the client gets every one). */
  #refused(code: ErrorCode, message: string): void {
    if (this.#loggedRefusals.has(code)) return;
    this.#loggedRefusals.add(code);
    this.#log.info({ code, principal: this.#gate.principal?.id, clientId: this.#clientId }, message);
  }

  get inflight(): number {
    return this.#unanswered.size;
  }

  /** Authenticates the connection; `welcome` follows once it is admitted. */
  start(): void {
    this.#gate.start(this.token);
  }

  /** Greets the client; the first frame on every admitted connection. */
  #welcome(principal: Principal): void {
    const { config, identity } = this.deps;
    this.#send({
      op: "welcome",
      v: PROTOCOL_VERSION,
      node: identity.node,
      role: identity.role(),
      epoch: identity.epoch(),
      session: this.id,
      principal: { id: principal.id, kind: principal.kind, expiresAt: principal.expiresAt },
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
    if (!this.#gate.ready) return this.#gate.holdUnreadable(() => this.rejectOversized(bytes));
    this.#error(
      ErrorCode.FRAME_TOO_LARGE,
      `frame of ${bytes} bytes exceeds the limit of ${this.deps.config.server.maxFrameBytes}`,
    );
  }

  rejectBinary(): void {
    if (!this.#gate.ready) return this.#gate.holdUnreadable(() => this.rejectBinary());
    this.#error(
      ErrorCode.BAD_FRAME,
      "binary frames are not part of protocol v1; send base64 in a text frame",
    );
  }

  handleText(text: string): void {
    if (!this.#gate.ready) return this.#gate.hold(text);
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
      case "auth":
        void this.#gate.reauthenticate(f);
        return;
      case "hello": {
        const foreign = this.#foreignClientId(f.clientId);
        if (foreign) {
          this.#refused(ErrorCode.CLIENT_ID_DENIED, foreign);
          return this.#error(ErrorCode.CLIENT_ID_DENIED, foreign, f.id);
        }
        this.#clientId = f.clientId;
        this.#introduced = true;
        this.#instance = f.instance;
        // Seqs count from 1 per run of a client: without an instance naming the run, a restarted
        // client's seq 1 would be taken for a resend of the last run's, and never written.
        this.#sequenceOwner = f.instance === undefined ? undefined : `${f.clientId}\u0000${f.instance}`;
        this.#log.debug({ clientId: f.clientId, lastEpoch: f.lastEpoch }, "client hello");
        this.#send({ op: "hello_ok", id: f.id, clientId: f.clientId, epoch: this.deps.identity.epoch() });
        return;
      }
      case "publish":
        return this.#publish(f);
      case "subscribe":
        void this.#subscriptions.subscribe(f);
        return;
      case "credit":
        return this.#subscriptions.credit(f);
      case "commit":
        void this.#subscriptions.commit(f);
        return;
      case "unsubscribe":
        void this.#subscriptions.unsubscribe(f);
        return;
      case "ping":
        this.#send({ op: "pong", id: f.id });
        return;
    }
  }

  /** Why the principal may not use this clientId, or undefined when it may (auth.clientIdBinding). */
  #foreignClientId(clientId: string): string | undefined {
    return clientIdRefusal(clientId, this.#gate.principal!, this.deps.config.auth);
  }

  #publish(f: PublishFrame): void {
    const { metrics, config } = this.deps;
    metrics.publishes.inc();
    if (this.#refusal) return this.#nack(f.id, this.#refusal.code, this.#refusal.message);
    if (this.deps.identity.role() !== "live") {
      // HA: this node is stepping down, or back from a stall a backup may have taken over in.
      return this.#nack(
        f.id,
        ErrorCode.NOT_LIVE,
        "this node is not the live (it is stepping down); publish to the live",
      );
    }
    if (!this.#publishRate.tryTake()) {
      const message =
        `more than ${config.limits.publishesPerSecond} publishes per second on this connection ` +
        `(limits.publishesPerSecond); this one was not written: resend it shortly`;
      this.#refused(ErrorCode.RATE_LIMITED, message);
      return this.#nack(f.id, ErrorCode.RATE_LIMITED, message);
    }
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
    let epoch = this.deps.identity.epoch();
    let duplicate = false;
    let pending: Promise<RecordPosition>;
    try {
      // A resend is checked as a new publish is: its topic and the principal's right to it come first.
      const kafkaTopic = this.#authorize(f);
      if (f.seq === undefined || !this.deps.dedupe) pending = this.#admit(f, kafkaTopic, epoch);
      else {
        const ledger = this.deps.dedupe;
        const written = this.#admitOnce(f, f.seq, kafkaTopic, ledger);
        if (written) {
          duplicate = true;
          epoch = written.epoch;
          pending = Promise.resolve({ ...written, offset: String(written.offset) });
        } else {
          try {
            pending = this.#admit(f, kafkaTopic, epoch, f.seq);
          } catch (e) {
            ledger.abandon(this.#sequenceOwner!, f.seq); // refused before the sink: not in flight
            throw e;
          }
        }
      }
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
          ...(duplicate ? { duplicate } : {}),
        });
      }), (e) => {
      const err = asRequestError(e);
      if (err.code === ErrorCode.INTERNAL) this.#log.error({ err: e }, "publish failed");
      answer(() => this.#nack(f.id, err.code, err.message));
    });
  }

  /** The publish's Kafka topic, once the topic is exposed and the principal may publish to it. */
  #authorize(f: PublishFrame): string {
    const decision = this.deps.topics.resolve(f.topic);
    if (!decision.ok) throw new RequestError(decision.code, decision.message);
    const principal = this.#gate.principal!;
    if (!principal.permissions.mayPublish(decision.kafkaTopic)) {
      const message = `"${principal.id}" may not publish to "${f.topic}"`;
      this.#refused(ErrorCode.PUBLISH_DENIED, message);
      throw new RequestError(ErrorCode.PUBLISH_DENIED, message);
    }
    return decision.kafkaTopic;
  }

  /**
   * Exactly-once: the position of an earlier write of this seq, or undefined when it must
   * be written now (the ledger then holds it as in flight until the sink tells its fate, or
   * the caller abandons it).
   */
  #admitOnce(f: PublishFrame, seq: number, kafkaTopic: string, ledger: DedupeLedger): WrittenAt | undefined {
    const owner = this.#sequenceOwner;
    if (owner === undefined) {
      throw new RequestError(
        ErrorCode.BAD_FIELD,
        `field "seq" needs a "hello" with the client's clientId and an instance (a random id for this run ` +
          `of the client) first on this connection`,
      );
    }
    const d = ledger.decide(owner, seq, f.acked);
    switch (d.kind) {
      case "written":
        if (d.at.topic !== kafkaTopic) {
          // Not a resend of that record: acking it would claim this one is in a topic it never reached.
          this.deps.metrics.dedupeResends.inc({ outcome: "seq_reused" });
          throw new RequestError(
            ErrorCode.SEQ_REUSED,
            `seq ${seq} was already used for a record to topic "${d.at.topic}"; this one (to "${kafkaTopic}") ` +
              `was not written: number each record with a seq of its own`,
          );
        }
        this.deps.metrics.dedupeResends.inc({ outcome: "duplicate" });
        return d.at;
      case "in_flight":
        this.deps.metrics.dedupeResends.inc({ outcome: "in_flight" });
        throw new RequestError(
          ErrorCode.PUBLISH_IN_FLIGHT,
          `seq ${seq} of client "${this.#clientId}" is still being written by an earlier send; ` +
            `this copy was not written: resend it shortly to learn its outcome`,
        );
      case "rebuilding":
        throw new RequestError(
          ErrorCode.KAFKA_UNAVAILABLE,
          "the bridge is reading back which publishes Kafka holds (after a takeover or an unknown outcome); " +
            "this one was not written: retry shortly",
        );
      case "write":
        return undefined;
    }
  }

  /**
   * Queues the authorised publish in the sink, synchronously, so each client's publishes reach
   * the sink in order. The sink checks the topic exists (it needs its partitions anyway).
   * Settles when Kafka answers.
   */
  #admit(f: PublishFrame, kafkaTopic: string, epoch: number, seq?: number): Promise<RecordPosition> {
    const { sink, identity } = this.deps;
    const principal = this.#gate.principal!;
    if (!this.deps.kafkaUp()) {
      throw new RequestError(
        ErrorCode.KAFKA_UNAVAILABLE,
        "Kafka is unreachable from this bridge; retry later",
      );
    }
    return sink.send({
      topic: kafkaTopic,
      partition: f.partition,
      key: f.key === undefined ? undefined : encodePayload(f.key, f.keyEncoding),
      value: encodePayload(f.value, f.encoding),
      headers: {
        ...f.headers,
        // With seq, the id names the publish, not this attempt: every resend carries the same one,
        // so a consumer can dedupe on it (and the seq needs no header of its own: each costs CPU).
        "eb-message-id": seq === undefined
          ? `${this.#clientId}:${f.id}`
          : `${this.#clientId}:${this.#instance}:${seq}`,
        "eb-client-id": this.#clientId,
        ...(principal.kind === "anonymous" ? {} : { "eb-principal": principal.id }),
        "eb-node": identity.node,
        "eb-epoch": String(epoch),
      },
      sequence: seq === undefined ? undefined : { clientId: this.#sequenceOwner!, seq },
    });
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
   *
   * `leaveGroups: "background"` (an HA step-down) does not wait for the group consumers to leave:
   * kafkajs cannot stop a consumer in the middle of a JoinGroup, which lasts until every member
   * known to the group rejoins or times out (after a failover, the dead live's member: a whole
   * session timeout). Waiting held failbacks for up to 4.7 s. The subscriptions are stopped at once
   * (nothing more is delivered) and the consumers never commit on their own, so the wait buys
   * nothing. A shutdown waits, so that the process leaves its groups before it exits.
   */
  async drain(
    deadline: number,
    refusal = {
      code: ErrorCode.SHUTTING_DOWN as ErrorCode,
      message: "the bridge is shutting down; publish to another node",
    },
    leaveGroups: "await" | "background" = "await",
  ): Promise<DrainTimes> {
    this.#refusal = refusal;
    const start = performance.now();
    if (this.#unanswered.size > 0) {
      await settlesWithin(new Promise<void>((r) => (this.#idle = r)), deadline - performance.now());
    }
    for (const abandon of [...this.#unanswered]) abandon();
    const published = performance.now();
    await Promise.allSettled(this.#subscriptions.commitsInFlight);
    const committed = performance.now();
    const stopped = this.#subscriptions.stopAll(); // never rejects (allSettled)
    if (leaveGroups === "await") await stopped;
    return {
      publishesMs: published - start,
      commitsMs: committed - published,
      subscriptionsMs: performance.now() - committed,
      stopped,
    };
  }

  /** The socket is gone: stop deliveries. In-flight publishes still complete in Kafka. */
  async closed(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#gate.stop();
    await this.#subscriptions.stopAll();
  }
}
