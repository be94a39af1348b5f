/**
 * A hard bound on each socket's send buffer, for every frame kind (replies, errors, pongs, messages).
 * Deliveries already pause well below it (server.slowConsumer.maxBufferedBytes); what can still pile
 * up is the answers to a client that keeps sending and never reads. Past the bound nothing more is
 * queued: the socket is closed with SEND_BUFFER_FULL (4009), which a client reads after the frames
 * queued before it, and cut after a grace period if the client does not answer the close.
 */
import { CloseCode } from "../protocol/codes.ts";

export interface GuardedSocket {
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(text: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
}

const OPEN = 1;

export class SendGuard {
  #tripped = false;
  #cut?: ReturnType<typeof setTimeout>;

  constructor(
    readonly ws: GuardedSocket,
    /** 0: no bound. */
    readonly maxBytes: number,
    readonly onTrip: (buffered: number) => void,
    readonly graceMs = 5_000,
  ) {}

  get tripped(): boolean {
    return this.#tripped;
  }

  /** Queues `text` unless the buffer is past the bound; then closes instead. False when not sent. */
  send(text: string): boolean {
    if (this.#tripped || this.ws.readyState !== OPEN) return false;
    if (this.maxBytes > 0 && this.ws.bufferedAmount > this.maxBytes) {
      this.#trip();
      return false;
    }
    this.ws.send(text);
    return true;
  }

  #trip(): void {
    this.#tripped = true;
    const buffered = this.ws.bufferedAmount;
    this.ws.close(CloseCode.SEND_BUFFER_FULL, "send buffer full: the client does not read");
    this.#cut = setTimeout(() => this.ws.terminate(), this.graceMs);
    this.onTrip(buffered);
  }

  /** The socket closed: no cut needed any more. */
  closed(): void {
    clearTimeout(this.#cut);
  }
}
