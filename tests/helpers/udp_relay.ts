/** Relays UDP datagrams to one target, and can drop them: a heartbeat link that can be cut. */
import dgram from "node:dgram";
import type { Buffer } from "node:buffer";

export class UdpRelay {
  readonly #socket = dgram.createSocket("udp4");
  cutOff = false;
  /** Datagrams relayed, when recording (the heartbeat-auth test replays them). */
  readonly recorded: Buffer[] = [];
  recording = false;

  constructor(readonly listenPort: number, readonly targetPort: number) {}

  async start(): Promise<void> {
    this.#socket.on("message", (msg: Buffer) => {
      if (this.recording) this.recorded.push(msg);
      if (!this.cutOff) this.#socket.send(msg, this.targetPort, "127.0.0.1");
    });
    await new Promise<void>((r) => this.#socket.bind(this.listenPort, "127.0.0.1", () => r()));
  }

  close(): Promise<void> {
    return new Promise((r) => this.#socket.close(() => r()));
  }
}
