/**
 * A broadcast subscription served by the fan-out hub (src/hub/): the connection's
 * side of a hub cursor, shaped like Subscription so that the session treats both
 * alike (credit, stop, the handle that unsubscribes).
 */
import type { BroadcastHub } from "../hub/hub.ts";
import type { Cursor } from "../hub/cursor.ts";
import type { SourceHandle } from "../kafka/types.ts";
import type { Encoding, StartPosition } from "../protocol/mod.ts";

export interface HubSubscriptionHooks {
  /** A frame already encoded as JSON text. */
  sendText(text: string): void;
  bufferedAmount(): number;
  onPendingChange(delta: number): void;
}

export class HubSubscription {
  readonly mode = "broadcast" as const;
  handle?: SourceHandle;
  /** Where the cursor starts, per partition (the "subscribed" frame tells the client). */
  start?: Record<string, string>;
  #cursor?: Cursor;
  #stopped = false;
  /** Credit granted before the cursor was in place. */
  #early = 0;

  constructor(
    readonly sub: string,
    readonly clientTopic: string,
    readonly encoding: Encoding,
    readonly credit: number,
    readonly limits: {
      maxCredit: number;
      maxBufferedBytes: number;
      stall?: { timeoutMs: number; onStalled(reason: string): void };
    },
    readonly hooks: HubSubscriptionHooks,
  ) {}

  get stopped(): boolean {
    return this.#stopped;
  }

  async open(hub: BroadcastHub, topic: string, from: StartPosition): Promise<SourceHandle> {
    const cursor = await hub.subscribe(topic, from, {
      sub: this.sub,
      clientTopic: this.clientTopic,
      encoding: this.encoding,
      credit: this.credit,
      maxCredit: this.limits.maxCredit,
      maxBufferedBytes: this.limits.maxBufferedBytes,
      stall: this.limits.stall,
    }, {
      send: this.hooks.sendText,
      bufferedAmount: this.hooks.bufferedAmount,
      onPendingChange: this.hooks.onPendingChange,
    });
    this.#cursor = cursor;
    this.start = Object.fromEntries([...cursor.positions].map(([p, o]) => [String(p), String(o)]));
    if (this.#early > 0) cursor.grant(this.#early);
    if (this.#stopped) cursor.stop();
    return {
      commit: () => Promise.reject(new Error("broadcast subscriptions do not commit")),
      stop: () => hub.unsubscribe(topic, cursor),
    };
  }

  /** Delivery starts: the session has sent "subscribed". */
  begin(): void {
    this.#cursor?.begin();
  }

  grant(n: number): void {
    if (this.#cursor) this.#cursor.grant(n);
    else this.#early += n;
  }

  stop(): void {
    this.#stopped = true;
    this.#cursor?.stop();
  }
}
