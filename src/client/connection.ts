/**
 * A minimal failover-aware client over the web-standard WebSocket (Deno and
 * browsers): it walks a list of bridge URLs until one is live, and tells its
 * owner when the link drops so unanswered work can be sent again. The full SDK
 * (outbox, exactly-once) builds on this later.
 */
import type { ServerFrame, WelcomeFrame } from "../protocol/frames.ts";

/** A frame as written on the wire (docs/protocol.md); the parsed ClientFrame types fill in defaults. */
export type WireFrame = { op: string } & Record<string, unknown>;

// deno-lint-ignore no-explicit-any
type AnyFrame = ServerFrame & Record<string, any>;

export interface ConnectionEvents {
  onFrame(frame: AnyFrame): void;
  /** The link dropped (or a node refused us); `reason` is printable. */
  onDrop(reason: string): void;
  onOpen(welcome: WelcomeFrame, url: string): void;
}

export class BridgeConnection {
  #ws?: WebSocket;
  #index = 0;
  #closed = false;
  #backoffMs = 250;

  constructor(readonly urls: string[], readonly clientId: string, readonly events: ConnectionEvents) {
    if (urls.length === 0) throw new Error("at least one bridge URL is needed");
  }

  get open(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
  }

  send(frame: WireFrame): boolean {
    if (!this.open) return false;
    this.#ws!.send(JSON.stringify(frame));
    return true;
  }

  /** Connects to the first live bridge in the list, trying each in turn until one accepts. */
  async connect(): Promise<void> {
    while (!this.#closed) {
      const url = this.urls[this.#index % this.urls.length];
      const welcome = await this.#try(url);
      if (welcome) {
        this.#backoffMs = 250;
        this.events.onOpen(welcome, url);
        return;
      }
      this.#index++;
      if (this.#index % this.urls.length === 0) {
        await new Promise((r) => setTimeout(r, this.#backoffMs));
        this.#backoffMs = Math.min(this.#backoffMs * 2, 2000);
      }
    }
  }

  #try(url: string): Promise<WelcomeFrame | undefined> {
    return new Promise((resolve) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(url);
      } catch {
        return resolve(undefined);
      }
      let welcomed = false;
      ws.onmessage = (e) => {
        const frame = JSON.parse(e.data as string) as AnyFrame;
        if (!welcomed) {
          if (frame.op === "welcome") {
            welcomed = true;
            this.#ws = ws;
            ws.send(JSON.stringify({ op: "hello", clientId: this.clientId, lastEpoch: frame.epoch }));
            resolve(frame as WelcomeFrame);
          }
          return; // a refusal (NOT_LIVE, TOO_MANY_CONNECTIONS) is followed by close
        }
        this.events.onFrame(frame);
      };
      ws.onclose = (e) => {
        if (!welcomed) return resolve(undefined);
        if (this.#ws === ws) this.#ws = undefined;
        if (!this.#closed) {
          this.#index++; // the node we were on is going away: start with the next one
          this.events.onDrop(`connection to ${url} closed (${e.code}${e.reason ? ` ${e.reason}` : ""})`);
        }
      };
      ws.onerror = () => {};
    });
  }

  close(): void {
    this.#closed = true;
    this.#ws?.close(1000);
  }
}
