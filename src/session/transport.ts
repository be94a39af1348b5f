/** What a session needs from its connection; the server adapts npm:ws to it. */
export interface Transport {
  send(text: string): void;
  /** Bytes queued in the socket and not yet written to the network. */
  bufferedAmount(): number;
  close(code: number, reason: string): void;
}
