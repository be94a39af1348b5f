/** Relays UDP datagrams to one target, and can drop them: a heartbeat link that can be cut. */
import dgram from "node:dgram";
import type { Buffer } from "node:buffer";
import { freePort, HaCluster } from "./ha.ts";

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

/**
 * The heartbeat link of a group of nodes, through a relay per direction: `cut()` drops every
 * beat between them, `heal()` lets them through again. Pass `peerPort` to HaCluster, then call
 * `start()` with the cluster's nodes before starting them.
 */
export class HeartbeatLink {
  readonly relays = new Map<string, UdpRelay>();

  /** HaCluster's peerPort: where node `from` sends its beats for node `to`. */
  readonly peerPort = (from: string, to: string, toPort: number): number => {
    const key = `${from}->${to}`;
    if (!this.relays.has(key)) this.relays.set(key, new UdpRelay(freePort(), toPort));
    return this.relays.get(key)!.listenPort;
  };

  /** Creates (if need be) and starts a relay for each direction between the nodes. */
  async start(nodes: { name: string; hbPort: number }[]): Promise<void> {
    for (const from of nodes) {
      for (const to of nodes) if (from !== to) this.peerPort(from.name, to.name, to.hbPort);
    }
    for (const r of this.relays.values()) await r.start();
  }

  cut(): void {
    for (const r of this.relays.values()) r.cutOff = true;
  }

  heal(): void {
    for (const r of this.relays.values()) r.cutOff = false;
  }

  async close(): Promise<void> {
    for (const r of this.relays.values()) await r.close();
  }
}

/**
 * The pair the cut-link tests use: a (priority 200) and b (100), heartbeat mode, no failback, their
 * beats going through a HeartbeatLink the test can cut. Neither node is started yet.
 */
export async function pairBehindLink(): Promise<{ ha: HaCluster; link: HeartbeatLink }> {
  const link = new HeartbeatLink();
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ], link.peerPort);
  try {
    await link.start(["a", "b"].map((name) => ({ name, hbPort: ha.hbPort(name) })));
  } catch (e) {
    await link.close(); // the relays that did start
    throw e;
  }
  return { ha, link };
}
