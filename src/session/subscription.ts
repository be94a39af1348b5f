/**
 * One subscription's flow control. Kafka messages wait here until the client has
 * credit and the socket is not backed up; the source fetches nothing more while a
 * message waits, so memory stays bounded by one fetch per subscription.
 */
import type { Delivery, SourceHandle } from "../kafka/types.ts";
import type { Encoding, MessageFrame, SubscribeMode } from "../protocol/mod.ts";
import { ErrorCode, messageBody } from "../protocol/mod.ts";

export interface FlowLimits {
  maxCredit: number;
  maxBufferedBytes: number;
  policy: "pause" | "disconnect";
  stallTimeoutMs: number;
}

export interface SubscriptionHooks {
  send(frame: MessageFrame): void;
  bufferedAmount(): number;
  /** False while this node may not serve (HA: not the live): nothing is delivered then. */
  serving?(): boolean;
  /** Called once when the slow-consumer policy is "disconnect" and the client stalled. */
  onStalled(reason: string): void;
  onPendingChange(delta: number): void;
}

const BUFFER_POLL_MS = 25;

export class Subscription {
  handle?: SourceHandle;
  /** Group mode: the Kafka group and topic, to tell whether a commit is already covered. */
  kafkaGroup?: { groupId: string; topic: string };
  #credit: number;
  #waiting?: { delivery: Delivery; resolve(sent: boolean): void; since: number };
  #poll?: ReturnType<typeof setInterval>;
  #stopped = false;
  /** Group mode: the partitions Kafka assigned to this member at its last join. */
  #assigned = new Set<number>();
  /** Per assigned partition, the highest offset sent to the client: what it may commit up to. */
  readonly #delivered = new Map<number, bigint>();

  constructor(
    readonly sub: string,
    readonly clientTopic: string,
    readonly mode: SubscribeMode,
    readonly encoding: Encoding,
    initialCredit: number,
    readonly limits: FlowLimits,
    readonly hooks: SubscriptionHooks,
  ) {
    this.#credit = initialCredit;
  }

  get credit(): number {
    return this.#credit;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  /** The source's DeliverFn: resolves true once the message is on the socket. */
  deliver = (d: Delivery, cancel?: AbortSignal): Promise<boolean> => {
    if (this.#stopped || this.hooks.serving?.() === false) return Promise.resolve(false);
    // A message still waiting belongs to a batch the source gave up on (a rebalance): never send it later.
    this.#dropWaiting();
    if (this.#canSend()) {
      this.#send(d);
      return Promise.resolve(true);
    }
    this.hooks.onPendingChange(1);
    return new Promise((resolve) => {
      const waiting = { delivery: d, resolve, since: performance.now() };
      this.#waiting = waiting;
      cancel?.addEventListener("abort", () => {
        if (this.#waiting === waiting) this.#dropWaiting();
      }, { once: true });
      this.#watchIfNeeded();
    });
  };

  #dropWaiting(): void {
    const w = this.#waiting;
    if (!w) return;
    this.#waiting = undefined;
    this.#unwatch();
    this.hooks.onPendingChange(-1);
    w.resolve(false);
  }

  /** A group join: these partitions are now this subscription's; what was delivered on others is forgotten. */
  assign(partitions: number[]): void {
    this.#assigned = new Set(partitions);
    for (const p of [...this.#delivered.keys()]) if (!this.#assigned.has(p)) this.#delivered.delete(p);
  }

  /**
   * Why a commit of `offset` on `partition` is refused, or undefined when it may go to Kafka:
   * only partitions assigned to this subscription, and only offsets it delivered, so a client
   * cannot move a group past records nobody received.
   */
  mayCommit(partition: number, offset: string): { code: ErrorCode; message: string } | undefined {
    if (!this.#assigned.has(partition)) {
      return {
        code: ErrorCode.PARTITION_NOT_ASSIGNED,
        message: `partition ${partition} is not assigned to subscription "${this.sub}" (assigned: ${
          [...this.#assigned].sort((a, b) => a - b).join(", ") || "none"
        })`,
      };
    }
    const delivered = this.#delivered.get(partition);
    if (delivered === undefined || BigInt(offset) > delivered) {
      return {
        code: ErrorCode.OFFSET_NOT_DELIVERED,
        message:
          `offset ${offset} of partition ${partition} was not delivered on subscription "${this.sub}" (${
            delivered === undefined ? "nothing delivered yet" : `last delivered: ${delivered}`
          })`,
      };
    }
    return undefined;
  }

  grant(n: number): void {
    this.#credit = Math.min(this.limits.maxCredit, this.#credit + n);
    this.#tryFlush();
    this.#watchIfNeeded();
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#dropWaiting();
    this.#unwatch();
  }

  #canSend(): boolean {
    return this.#credit > 0 && this.hooks.bufferedAmount() < this.limits.maxBufferedBytes;
  }

  #send(d: Delivery): void {
    this.#credit--;
    const offset = BigInt(d.offset);
    if (offset > (this.#delivered.get(d.partition) ?? -1n)) this.#delivered.set(d.partition, offset);
    this.hooks.send({ op: "message", sub: this.sub, ...messageBody(this.clientTopic, d, this.encoding) });
  }

  #tryFlush(): void {
    const w = this.#waiting;
    if (!w || !this.#canSend()) return;
    if (this.hooks.serving?.() === false) return this.#dropWaiting();
    this.#waiting = undefined;
    this.#unwatch();
    this.hooks.onPendingChange(-1);
    this.#send(w.delivery);
    w.resolve(true);
  }

  /**
   * A message waiting for credit needs no timer: grant() flushes it. A timer runs
   * only to notice a drained socket, or to enforce the disconnect policy.
   */
  #watchIfNeeded(): void {
    if (this.#poll !== undefined || !this.#waiting) return;
    if (this.#credit === 0 && this.limits.policy === "pause") return;
    this.#poll = setInterval(() => {
      const w = this.#waiting;
      if (!w || (this.#credit === 0 && this.limits.policy === "pause")) return this.#unwatch();
      if (this.limits.policy === "disconnect") {
        const backedUp = this.hooks.bufferedAmount() >= this.limits.maxBufferedBytes;
        if (backedUp || performance.now() - w.since > this.limits.stallTimeoutMs) {
          this.hooks.onStalled(
            backedUp
              ? `socket send buffer passed ${this.limits.maxBufferedBytes} bytes`
              : `no credit for ${this.limits.stallTimeoutMs} ms with messages waiting`,
          );
          return;
        }
      }
      this.#tryFlush();
    }, BUFFER_POLL_MS);
  }

  #unwatch(): void {
    if (this.#poll !== undefined) clearInterval(this.#poll);
    this.#poll = undefined;
  }
}
