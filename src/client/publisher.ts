/**
 * The SDK's publish path: checks a publish, keeps it in the outbox until the bridge answers
 * for good, sends what the bridge's limits allow, and resends after retryable refusals. The
 * connection (EdgeBridgeClient) owns the link and tells the publisher when it opens and drops.
 */
import { RETRYABLE } from "../protocol/codes.ts";
import type { Encoding, WelcomeFrame } from "../protocol/frames.ts";
import type { Backoff } from "./backoff.ts";
import { PublishError } from "./errors.ts";
import type { InboundFrame } from "./link.ts";
import { byteLength, type Outbox, type OutboxEntry, type OutgoingPublish } from "./outbox.ts";

export interface PublishOptions {
  key?: string;
  keyEncoding?: "utf8" | "base64";
  headers?: Record<string, string>;
  partition?: number;
  /** Default: `utf8` for a string value, `json` for anything else. */
  encoding?: Encoding;
}

export interface PublishAck {
  topic: string;
  partition: number;
  offset: string;
  epoch: number;
  /** The bridge had written this seq before (a resend): this is that first write's position. */
  duplicate: boolean;
  seq: number;
}

/** What the publisher needs of the connection it publishes over. */
export interface PublisherHost {
  /** The open link's limits (from `welcome`), or undefined while no link is open. */
  limits(): WelcomeFrame["limits"] | undefined;
  /** Sends on the open link; false when there is none, or it cannot take more now. */
  send(text: string): boolean;
  /** The bridge answered a publish: the node is healthy. */
  answered(): void;
  /** An ack carried this HA epoch. */
  sawEpoch(epoch: number): void;
  /** Runs `fn` after `ms`, unless the link drops first. */
  timer(ms: number, fn: () => void): void;
  log(level: "info" | "warn" | "error", message: string): void;
}

/** The bridge's default, for a welcome that names no limit. */
const DEFAULT_MAX_INFLIGHT = 256;

export class Publisher {
  readonly #outbox: Outbox;
  /** Delays before resending publishes refused with a retryable code (shared with subscribes). */
  readonly #retry: Backoff;
  readonly #host: PublisherHost;
  /** A resend of retryably refused publishes is scheduled. */
  #retryScheduled = false;
  #drainWaiters: Array<() => void> = [];

  constructor(outbox: Outbox, retry: Backoff, host: PublisherHost) {
    this.#outbox = outbox;
    this.#retry = retry;
    this.#host = host;
  }

  /** Publishes sent or queued and not answered yet. */
  get pending(): number {
    return this.#outbox.size;
  }

  /** Checks and queues one publish, and sends it if the link allows; see EdgeBridgeClient.publish. */
  publish(topic: string, value: unknown, opts: PublishOptions = {}): Promise<PublishAck> {
    if (typeof topic !== "string" || topic === "") {
      return Promise.reject(new TypeError("publish: topic must be a non-empty string"));
    }
    const encoding = opts.encoding ?? (typeof value === "string" ? "utf8" : "json");
    if (value === undefined) return Promise.reject(new TypeError("publish: value is undefined"));
    if (encoding !== "json" && typeof value !== "string") {
      return Promise.reject(
        new TypeError(
          `publish: value must be a string with encoding "${encoding}"; use "json" for other values`,
        ),
      );
    }
    const seq = this.#outbox.nextSeq;
    const frame: OutgoingPublish = { op: "publish", id: `p${seq}`, topic, value, encoding, seq };
    if (opts.key !== undefined) frame.key = opts.key;
    if (opts.keyEncoding !== undefined) frame.keyEncoding = opts.keyEncoding;
    if (opts.headers !== undefined) frame.headers = opts.headers;
    if (opts.partition !== undefined) frame.partition = opts.partition;
    let text: string;
    try {
      text = JSON.stringify(frame);
    } catch (e) {
      return Promise.reject(
        new TypeError(`publish: value cannot be written as JSON: ${(e as Error).message}`),
      );
    }
    const w = Promise.withResolvers<PublishAck>();
    try {
      this.#outbox.add(frame, byteLength(text), w as PromiseWithResolvers<unknown>);
    } catch (e) {
      return Promise.reject(e);
    }
    this.pump();
    return w.promise;
  }

  /**
   * Sends what the outbox may send now: everything unsent, up to the bridge's in-flight
   * limit, each with the floor of what is acked. Returns how many of them are resends.
   */
  pump(): number {
    const limits = this.#host.limits();
    if (!limits) return 0;
    let resent = 0;
    const maxInflight = limits.maxInflightPublishes > 0 ? limits.maxInflightPublishes : DEFAULT_MAX_INFLIGHT;
    for (const e of this.#outbox.sendable(maxInflight)) {
      const acked = this.#outbox.ackedFloor();
      const text = JSON.stringify(acked > 0 ? { ...e.frame, acked } : e.frame);
      const bytes = byteLength(text);
      if (bytes > limits.maxFrameBytes) {
        this.#settle(
          e,
          new PublishError(
            "FRAME_TOO_LARGE",
            `publish seq ${e.seq} to "${e.frame.topic}" is a ${bytes}-byte frame; ` +
              `the bridge accepts at most ${limits.maxFrameBytes} bytes`,
            e.maybeWritten,
            e.seq,
          ),
        );
        continue;
      }
      if (!this.#host.send(text)) break;
      if (e.attempts++ > 0) resent++;
      e.onWire = true;
    }
    return resent;
  }

  /** An `ack` or `nack` frame; false if it names no publish of this client (the client ignores it). */
  handle(f: InboundFrame): boolean {
    const e = this.#entryOf(f.id);
    if (!e) return false;
    this.#host.answered();
    if (f.op === "ack") this.#onAck(e, f);
    else this.#onNack(e, f);
    return true;
  }

  /** The link dropped: what was on it goes again on the next one; a scheduled resend died with it. */
  linkLost(): void {
    this.#outbox.linkLost();
    this.#retryScheduled = false;
  }

  /** Resolves once every publish has been answered. */
  drained(): Promise<void> {
    if (this.#outbox.size === 0) return Promise.resolve();
    return new Promise((r) => this.#drainWaiters.push(r));
  }

  /** The client closed: every publish still unanswered is refused with CLIENT_CLOSED. */
  refuseUnanswered(): void {
    for (const e of this.#outbox.drain()) {
      const maybe = e.maybeWritten || e.onWire;
      e.settle.reject(
        new PublishError(
          "CLIENT_CLOSED",
          `the client closed before publish seq ${e.seq} to "${e.frame.topic}" was answered` +
            (maybe ? "; it may have been written" : "; it was not written"),
          maybe,
          e.seq,
        ),
      );
    }
  }

  #entryOf(id: unknown): OutboxEntry | undefined {
    const m = typeof id === "string" ? /^p(\d+)$/.exec(id) : null;
    return m ? this.#outbox.get(Number(m[1])) : undefined;
  }

  #onAck(e: OutboxEntry, f: InboundFrame): void {
    this.#retry.reset();
    if (typeof f.epoch === "number") this.#host.sawEpoch(f.epoch);
    this.#settle(
      e,
      {
        topic: f.topic,
        partition: f.partition,
        offset: f.offset,
        epoch: f.epoch,
        duplicate: f.duplicate === true,
        seq: e.seq,
      } satisfies PublishAck,
    );
    this.pump();
  }

  #onNack(e: OutboxEntry, f: InboundFrame): void {
    const retryable = f.code in RETRYABLE
      ? RETRYABLE[f.code as keyof typeof RETRYABLE]
      : f.retryable === true;
    if (!retryable) {
      this.#settle(
        e,
        new PublishError(
          f.code,
          `publish seq ${e.seq} to "${e.frame.topic}" refused: ${f.code}: ${f.message}`,
          e.maybeWritten,
          e.seq,
        ),
      );
      this.pump();
      return;
    }
    e.onWire = false;
    e.held = true;
    if (f.code === "KAFKA_TIMEOUT") e.maybeWritten = true;
    if (this.#retryScheduled) return;
    const delay = this.#retry.next();
    this.#host.log(
      "warn",
      `publish seq ${e.seq} refused for now (${f.code}: ${f.message}); resending in ${delay} ms`,
    );
    this.#retryScheduled = true;
    this.#host.timer(delay, () => {
      this.#retryScheduled = false;
      this.#outbox.release();
      this.pump();
    });
  }

  /** Answers one publish for good (an ack, or an error) and takes it out of the outbox. */
  #settle(e: OutboxEntry, outcome: PublishAck | Error): void {
    this.#outbox.remove(e.seq);
    if (outcome instanceof Error) e.settle.reject(outcome);
    else e.settle.resolve(outcome);
    if (this.#outbox.size === 0) { for (const w of this.#drainWaiters.splice(0)) w(); }
  }
}
