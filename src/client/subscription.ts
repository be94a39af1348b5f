/**
 * One subscription as the application sees it: an async iterable of messages that
 * survives reconnects. It grants credit back as the application consumes, resumes where
 * it left off on a new link (group: from Kafka's committed offsets; broadcast: from the
 * positions it tracks) and drops replayed positions it already handed over.
 */
import { TypedEventTarget } from "./typed_events.ts";
import { type ErrorCode, RETRYABLE } from "../protocol/codes.ts";
import type { Encoding, MessageFrame, SkippedFrame, SubscribeMode } from "../protocol/frames.ts";
import { SubscriptionError } from "./errors.ts";
import type { InboundFrame } from "./link.ts";
import { DeliveredPositions, type From, resumeFrom } from "./replay_filter.ts";

export type { From } from "./replay_filter.ts";

export interface SubscribeOptions {
  /** `broadcast` (default): every message; `group`: share the partitions with the group's other members. */
  mode?: SubscribeMode;
  /** Consumer group name; required with mode `group`. */
  group?: string;
  /** Where to start (default `latest`). In a group, only where nothing is committed. */
  from?: From;
  /** How many messages may be buffered ahead of the application (default 100, capped by the bridge's maxCredit). */
  credit?: number;
  /** How values are delivered (default `utf8`). */
  encoding?: Encoding;
}

/** A delivered record: the `message` frame's fields. */
export type Message = Omit<MessageFrame, "op" | "sub">;

/** Records the bridge could not deliver because Kafka's retention deleted them first. */
export type Skipped = Omit<SkippedFrame, "op" | "sub">;

/** What a subscription needs from the client that owns it. */
export interface SubscriptionHost {
  /** Sends a frame on the current link; false when there is none (it is sent again on the next). */
  send(frame: Record<string, unknown>): boolean;
  nextId(): string;
  /** The bridge's `limits.maxCredit`, once welcomed. */
  maxCredit(): number | undefined;
  log(level: "info" | "warn" | "error", message: string): void;
  /** A retryable refusal of `subscribe`: attach again after a delay. */
  retryLater(sub: Subscription): void;
  /** Runs `run` after a retry delay, unless the link drops first (a new link resends what is pending). */
  afterRetryDelay(run: () => void): void;
  /** The subscription ended: drop it from the client. */
  forget(sub: Subscription): void;
}

interface CommitWaiter {
  offset: bigint;
  resolve(): void;
  reject(e: Error): void;
}

interface SubscriptionEventMap {
  skipped: CustomEvent<Skipped>;
}

export class Subscription extends TypedEventTarget<SubscriptionEventMap> implements AsyncIterable<Message> {
  readonly mode: SubscribeMode;
  readonly group?: string;
  readonly from: From;
  readonly credit: number;
  readonly encoding: Encoding;

  readonly #host: SubscriptionHost;
  readonly #buffer: Message[] = [];
  #waiters: Array<{ resolve(r: IteratorResult<Message>): void; reject(e: Error): void }> = [];
  readonly #positions = new DeliveredPositions();
  /** Broadcast: where the bridge started each partition (merged over every `subscribed`). */
  #start?: Record<string, string>;
  /** Credit earned back (consumed or dropped) and not yet granted. */
  #toGrant = 0;
  /** The `subscribe` request on the current link, until the link drops. */
  #requestId?: string;
  /** Subscribed on the current link. */
  #live = false;
  /** No more messages for the application (closed, or failed). */
  #ended = false;
  #failure?: SubscriptionError;
  /** The last error the bridge sent about this subscription outside any request (it precedes `unsubscribed`). */
  #lastError?: { code: ErrorCode; message: string };
  readonly #ready = Promise.withResolvers<void>();
  #subscribedOnce = false;
  /** Group commits not confirmed yet, per partition. */
  readonly #commits = new Map<number, CommitWaiter[]>();
  readonly #commitRequests = new Map<string, { partition: number; offset: bigint }>();
  /** Partitions whose commit was refused retryably and is resent after a delay. */
  readonly #commitRetries = new Set<number>();
  /**
   * Per partition, the highest offset the bridge delivered on this link (replays included).
   * The bridge takes a commit only for an offset delivered on the subscription it names, so a
   * commit for a message delivered on an earlier link waits until the group redelivers it here
   * (it does: nothing above the last commit is committed), and goes out then.
   */
  readonly #deliveredHere = new Map<number, bigint>();
  #closing?: { unsubscribeId?: string; done: PromiseWithResolvers<void> };

  constructor(readonly name: string, readonly topic: string, opts: SubscribeOptions, host: SubscriptionHost) {
    super();
    if (typeof topic !== "string" || topic === "") {
      throw new TypeError("subscribe: topic must be a non-empty string");
    }
    this.mode = opts.mode ?? "broadcast";
    if (this.mode !== "broadcast" && this.mode !== "group") {
      throw new TypeError(`subscribe: mode must be "broadcast" or "group", got "${this.mode}"`);
    }
    if (this.mode === "group" && (typeof opts.group !== "string" || opts.group === "")) {
      throw new TypeError(`subscribe: mode "group" needs a group name (options.group)`);
    }
    this.group = this.mode === "group" ? opts.group : undefined;
    this.from = opts.from ?? "latest";
    this.credit = opts.credit ?? 100;
    if (!Number.isInteger(this.credit) || this.credit < 1) {
      throw new TypeError(`subscribe: credit must be a positive integer, got ${opts.credit}`);
    }
    this.encoding = opts.encoding ?? "utf8";
    this.#host = host;
    this.#ready.promise.catch(() => {}); // whoever calls ready() sees the rejection; nobody else must
  }

  /** Resolves on the first `subscribed`; rejects if the subscription fails or closes first. */
  ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** Set when the subscription failed: why. */
  get error(): SubscriptionError | undefined {
    return this.#failure;
  }

  /**
   * Confirms a message processed. Group: sends `commit` and resolves on `committed` (re-sent
   * after a reconnect). Broadcast: resolves at once, since the SDK keeps broadcast positions itself.
   */
  commit(m: Pick<Message, "partition" | "offset">): Promise<void> {
    if (this.mode === "broadcast") return Promise.resolve();
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.reject(this.#closedError("commit"));
    if (!Number.isInteger(m.partition) || m.partition < 0 || !/^(0|[1-9][0-9]*)$/.test(String(m.offset))) {
      return Promise.reject(
        new TypeError(`commit: needs a message's partition and offset, got ${m.partition}/${m.offset}`),
      );
    }
    const w = Promise.withResolvers<void>();
    const offset = BigInt(m.offset);
    const list = this.#commits.get(m.partition) ?? [];
    list.push({ offset, resolve: w.resolve, reject: w.reject });
    this.#commits.set(m.partition, list);
    if (this.#live) this.#flushCommits(m.partition);
    return w.promise;
  }

  /** Ends the subscription (after pending commits are confirmed) and the iteration. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing.done.promise;
    if (this.#ended) return Promise.resolve();
    this.#closing = { done: Promise.withResolvers<void>() };
    this.#endIteration();
    if (this.#live) this.#unsubscribeOnceCommitted();
    else if (this.#requestId === undefined) this.#finishClose(); // not on the bridge at all
    // else: `subscribe` is in flight; `subscribed` sends the unsubscribe.
    return this.#closing.done.promise;
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: () => this.#next(),
      // Leaving a for-await loop early ends the subscription.
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  // ---- driven by the client ----

  /** A live link is open: subscribe on it, resuming where this subscription left off. */
  attach(): void {
    if (this.#ended) return;
    this.#live = false;
    this.#toGrant = 0;
    this.#requestId = this.#host.nextId();
    // What the bridge may send never exceeds what the buffer has room for.
    const credit = Math.max(0, this.#window() - this.#buffer.length);
    const from = this.mode === "broadcast"
      ? resumeFrom(this.from, this.#start, this.#positions.next)
      : this.from;
    this.#host.send({
      op: "subscribe",
      id: this.#requestId,
      sub: this.name,
      topic: this.topic,
      mode: this.mode,
      ...(this.group !== undefined ? { group: this.group } : {}),
      from,
      credit,
      encoding: this.encoding,
    });
  }

  /** The link dropped: the bridge's side of this subscription is gone with it. */
  detach(): void {
    this.#live = false;
    this.#requestId = undefined;
    this.#commitRequests.clear();
    this.#commitRetries.clear(); // the retry timers go with the link; redeliveries on the next resend
    this.#deliveredHere.clear();
    if (this.#closing) this.#finishClose();
  }

  /** The client closed for good. */
  shutdown(): void {
    if (!this.#closing) this.#closing = { done: Promise.withResolvers<void>() };
    this.#endIteration();
    this.#finishClose();
  }

  handle(f: InboundFrame): void {
    switch (f.op) {
      case "subscribed":
        return this.#onSubscribed(f);
      case "message":
        return this.#onMessage(f);
      case "skipped": {
        const { op: _op, sub: _sub, ...skipped } = f;
        this.#positions.skip(f.partition, f.to);
        this.#host.log(
          "warn",
          `${this.topic} partition ${f.partition}: offsets ${f.from} to ${f.to} (exclusive) were skipped: ${f.reason}`,
        );
        this.dispatchEvent(new CustomEvent("skipped", { detail: skipped as Skipped }));
        return;
      }
      case "committed":
        return this.#onCommitted(f.id, f.partition, BigInt(f.offset));
      case "error":
        return this.#onError(f);
      case "unsubscribed":
        if (this.#closing && f.id !== undefined && f.id === this.#closing.unsubscribeId) {
          return this.#finishClose();
        }
        if (f.id === undefined) {
          const err = this.#lastError;
          const why =
            `the bridge ended the subscription to "${this.topic}": ${f.reason ?? "no reason given"}` +
            (err ? ` (${err.code}: ${err.message})` : "");
          // Ended for a reason that passes (its Kafka consumer failed, say): subscribe again after
          // a delay, resuming where it left off; the application's iteration goes on.
          if (err && RETRYABLE[err.code] && !this.#closing) {
            this.#lastError = undefined;
            this.detach();
            this.#host.log("warn", `${why}; subscribing again`);
            return this.#host.retryLater(this);
          }
          this.#fail(err?.code ?? "UNSUBSCRIBED", why);
        }
        return;
    }
  }

  // ---- internals ----

  #window(): number {
    return Math.min(this.credit, this.#host.maxCredit() ?? this.credit);
  }

  #onSubscribed(f: InboundFrame): void {
    if (f.id !== this.#requestId) return;
    this.#live = true;
    if (f.start && typeof f.start === "object") {
      // Partitions first seen now (e.g. added to the topic) keep the start they got here.
      this.#start = { ...f.start, ...this.#start };
    }
    // Pending commits go out once now: the bridge answers one Kafka already holds (its answer was
    // lost with the link). Others it refuses until their messages are delivered here again, and
    // they go out then (#onMessage). Before the closing check, so a close waits for these answers.
    for (const partition of this.#commits.keys()) this.#flushCommits(partition, true);
    if (this.#closing) return this.#unsubscribeOnceCommitted();
    if (this.#subscribedOnce) this.#host.log("info", `resubscribed to ${this.topic}`);
    this.#subscribedOnce = true;
    this.#ready.resolve();
    this.#grant();
  }

  #onMessage(f: InboundFrame): void {
    const { op: _op, sub: _sub, ...message } = f;
    const offset = BigInt(f.offset);
    if (offset > (this.#deliveredHere.get(f.partition) ?? -1n)) {
      this.#deliveredHere.set(f.partition, offset);
      if (this.#commits.has(f.partition)) this.#flushCommits(f.partition);
    }
    if (!this.#positions.accept(f.partition, f.offset) || this.#ended) {
      this.#toGrant++; // a replay of what the application already has: its credit comes back
      return this.#grant();
    }
    this.#buffer.push(message as Message);
    while (this.#waiters.length && this.#buffer.length) {
      this.#waiters.shift()!.resolve({ done: false, value: this.#take() });
    }
  }

  #onCommitted(id: string, partition: number, offset: bigint): void {
    this.#commitRequests.delete(id);
    const list = this.#commits.get(partition);
    if (list) {
      const left = list.filter((w) => {
        if (w.offset > offset) return true;
        w.resolve();
        return false;
      });
      if (left.length) this.#commits.set(partition, left);
      else this.#commits.delete(partition);
    }
    if (this.#closing && this.#live) this.#unsubscribeOnceCommitted();
  }

  #onError(f: InboundFrame): void {
    const code = f.code as ErrorCode;
    if (f.id !== undefined && f.id === this.#requestId) {
      this.#requestId = undefined;
      if (this.#closing) return this.#finishClose();
      if (f.retryable) {
        this.#host.log(
          "warn",
          `subscribe to "${this.topic}" refused for now (${code}: ${f.message}); retrying`,
        );
        return this.#host.retryLater(this);
      }
      return this.#fail(code, `subscribe to "${this.topic}" refused: ${code}: ${f.message}`);
    }
    const commit = f.id !== undefined ? this.#commitRequests.get(f.id) : undefined;
    if (commit) {
      this.#commitRequests.delete(f.id);
      // E.g. KAFKA_UNAVAILABLE while the group rebalances: not committed yet, so not an answer for good.
      if (f.retryable) return this.#retryCommit(commit.partition, `${code}: ${f.message}`);
      if (
        code === "PARTITION_NOT_ASSIGNED" || code === "OFFSET_NOT_DELIVERED" ||
        code === "UNKNOWN_SUBSCRIPTION"
      ) {
        // Not delivered on this link (yet), a rebalance moved the partition, or the bridge ended
        // the subscription (a step-down drains subscriptions before it closes the link): the commit
        // goes out again once the group delivers its message here; until then it stays pending.
        this.#deliveredHere.delete(commit.partition);
        if (this.#closing && this.#live) this.#unsubscribeOnceCommitted();
        return;
      }
      const err = new SubscriptionError(
        code,
        `commit of partition ${commit.partition} failed: ${f.message}`,
        this.name,
      );
      const list = this.#commits.get(commit.partition) ?? [];
      const left = list.filter((w) => {
        if (w.offset > commit.offset) return true;
        w.reject(err);
        return false;
      });
      if (left.length) this.#commits.set(commit.partition, left);
      else this.#commits.delete(commit.partition);
      if (this.#closing && this.#live) this.#unsubscribeOnceCommitted();
      return;
    }
    if (this.#closing && f.id !== undefined && f.id === this.#closing.unsubscribeId) {
      return this.#finishClose();
    }
    this.#lastError = { code, message: f.message };
    this.#host.log("error", `subscription to "${this.topic}": ${code}: ${f.message}`);
  }

  #sendCommit(partition: number, offset: bigint): void {
    const id = this.#host.nextId();
    this.#commitRequests.set(id, { partition, offset });
    this.#host.send({ op: "commit", id, sub: this.name, partition, offset: offset.toString() });
  }

  /**
   * Sends the highest unconfirmed commit of a partition that was delivered on this link:
   * committing it confirms every lower one. Higher ones wait for their redelivery. `anyway`:
   * the highest of all, delivered here or not (once per new link).
   */
  #flushCommits(partition: number, anyway = false): void {
    const list = this.#commits.get(partition);
    const delivered = anyway ? undefined : this.#deliveredHere.get(partition);
    if (!list?.length || (!anyway && delivered === undefined)) return;
    const best = list.reduce(
      (a, w) => (w.offset > a && (anyway || w.offset <= delivered!) ? w.offset : a),
      -1n,
    );
    if (best < 0n) return;
    for (const r of this.#commitRequests.values()) {
      if (r.partition === partition && r.offset >= best) return; // already on its way
    }
    this.#sendCommit(partition, best);
  }

  #retryCommit(partition: number, why: string): void {
    if (this.#commitRetries.has(partition)) return; // one resend covers every refusal so far
    this.#commitRetries.add(partition);
    this.#host.log(
      "warn",
      `commit of "${this.topic}" partition ${partition} refused for now (${why}); retrying`,
    );
    this.#host.afterRetryDelay(() => {
      this.#commitRetries.delete(partition);
      if (this.#live) this.#flushCommits(partition);
    });
  }

  #unsubscribeOnceCommitted(): void {
    const closing = this.#closing!;
    if (closing.unsubscribeId !== undefined) return;
    // Commits on their way are waited for; one whose message was delivered on an earlier link
    // (and not again on this one) cannot be committed here: the group delivers it again instead.
    if (this.#commitRequests.size > 0) return;
    if (this.#commits.size > 0) {
      this.#rejectCommits(
        new SubscriptionError(
          "NOT_COMMITTED",
          `closed before the message was delivered again on this connection, so it was not committed; ` +
            `the group delivers it again`,
          this.name,
        ),
      );
    }
    closing.unsubscribeId = this.#host.nextId();
    this.#host.send({ op: "unsubscribe", id: closing.unsubscribeId, sub: this.name });
  }

  #take(): Message {
    this.#toGrant++;
    this.#grant();
    return this.#buffer.shift()!;
  }

  /** Grants earned credit in batches of half the window, so the bridge is never starved nor chatty. */
  #grant(): void {
    if (!this.#live || this.#ended) return;
    if (this.#toGrant >= Math.max(1, Math.floor(this.#window() / 2))) {
      this.#host.send({ op: "credit", sub: this.name, n: this.#toGrant });
      this.#toGrant = 0;
    }
  }

  #next(): Promise<IteratorResult<Message>> {
    if (this.#buffer.length) return Promise.resolve({ done: false, value: this.#take() });
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#ended) return Promise.resolve({ done: true, value: undefined });
    const w = Promise.withResolvers<IteratorResult<Message>>();
    this.#waiters.push(w);
    return w.promise;
  }

  #endIteration(): void {
    this.#ended = true;
    this.#buffer.length = 0;
    for (const w of this.#waiters) w.resolve({ done: true, value: undefined });
    this.#waiters = [];
  }

  #closedError(what: string): SubscriptionError {
    return new SubscriptionError(
      "UNSUBSCRIBED",
      `${what}: the subscription to "${this.topic}" is closed`,
      this.name,
    );
  }

  #rejectCommits(err: Error): void {
    for (const list of this.#commits.values()) for (const w of list) w.reject(err);
    this.#commits.clear();
  }

  #finishClose(): void {
    this.#live = false;
    this.#rejectCommits(this.#closedError("commit not confirmed before close"));
    this.#ready.reject(this.#closedError("closed before it was subscribed"));
    this.#host.forget(this);
    this.#closing?.done.resolve();
  }

  #fail(code: SubscriptionError["code"], message: string): void {
    if (this.#ended) return;
    this.#failure = new SubscriptionError(code, message, this.name);
    this.#ended = true;
    this.#live = false;
    this.#host.log("error", message);
    // Buffered messages are still handed out; the error follows them.
    for (const w of this.#waiters) w.reject(this.#failure);
    this.#waiters = [];
    this.#rejectCommits(this.#failure);
    this.#ready.reject(this.#failure);
    this.#host.forget(this);
  }
}
