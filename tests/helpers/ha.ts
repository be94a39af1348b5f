/** A live/backup group of real bridge processes, for HA tests. */
import { BridgeProcess } from "./bridge.ts";
import { brokers } from "./kafka.ts";

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

export interface HaNodeSpec {
  name: string;
  priority: number;
  /** Bootstrap brokers for this node (e.g. through a proxy that can be cut). */
  brokers?: string;
  /** Extra --set options for this node only, after the cluster's. */
  set?: string[];
}

interface NodeState {
  spec: HaNodeSpec;
  port: number;
  hbPort: number;
  bridge?: BridgeProcess;
}

export interface Readyz {
  status: number;
  role: string;
  epoch: number;
  live?: string | null;
}

export class HaCluster {
  readonly nodes = new Map<string, NodeState>();
  readonly dir: string;

  constructor(
    readonly mode: "heartbeat" | "file-lock",
    specs: HaNodeSpec[],
    readonly set: string[] = [],
    /** Where node `from` sends heartbeats for node `to` (default: straight to it). */
    readonly peerPort: (from: string, to: string, toPort: number) => number = (_f, _t, p) => p,
  ) {
    this.dir = Deno.makeTempDirSync({ prefix: "edge-bridge-ha-" });
    // Heartbeats are signed, as in production (docs/security.md).
    Deno.writeTextFileSync(this.keyFile, crypto.randomUUID() + crypto.randomUUID() + "\n");
    for (const spec of specs) this.nodes.set(spec.name, { spec, port: freePort(), hbPort: freePort() });
  }

  #node(name: string): NodeState {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  /** The pair's shared heartbeat key (ha.heartbeat.keyFile). */
  get keyFile(): string {
    return `${this.dir}/heartbeat.key`;
  }

  /** The pair id the nodes run with. */
  get pairId(): string {
    return "test-" + this.dir.split("-").pop();
  }

  hbPort(name: string): number {
    return this.#node(name).hbPort;
  }

  url(name: string): string {
    return `ws://127.0.0.1:${this.#node(name).port}/ws`;
  }

  bridge(name: string): BridgeProcess {
    const b = this.#node(name).bridge;
    if (!b) throw new Error(`node ${name} is not running`);
    return b;
  }

  async start(name: string): Promise<BridgeProcess> {
    const n = this.#node(name);
    const peers = [...this.nodes.values()].filter((o) => o !== n).map((o) =>
      `127.0.0.1:${this.peerPort(name, o.spec.name, o.hbPort)}`
    );
    n.bridge = await BridgeProcess.start({
      port: n.port,
      brokers: n.spec.brokers ?? brokers(),
      env: { EDGE_BRIDGE_NODE_ID: name },
      set: [
        `ha.mode=${this.mode}`,
        `ha.pairId=${this.pairId}`,
        `ha.heartbeat.keyFile=${this.keyFile}`,
        `ha.priority=${n.spec.priority}`,
        `ha.advertisedUrl=${this.url(name)}`,
        `ha.dataDir=${this.dir}/data-${name}`,
        `ha.fileLock.dir=${this.dir}/shared`,
        `ha.heartbeat.listen=127.0.0.1:${n.hbPort}`,
        `ha.heartbeat.peers=${peers.join(",")}`,
        "ha.failbackHoldDownMs=1000",
        "ha.kafkaLossTimeoutMs=1500",
        "kafka.healthCheckIntervalMs=250",
        "kafka.connectionTimeoutMs=1000",
        "kafka.requestTimeoutMs=3000",
        ...this.set,
        ...(n.spec.set ?? []),
      ],
    });
    return n.bridge;
  }

  async stop(name: string, signal: Deno.Signal = "SIGTERM"): Promise<number> {
    const n = this.#node(name);
    const code = await n.bridge!.stop(signal);
    n.bridge = undefined;
    return code;
  }

  async readyz(name: string): Promise<Readyz | undefined> {
    const n = this.#node(name);
    if (!n.bridge) return undefined;
    try {
      const r = await fetch(`${n.bridge.httpUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
      return { status: r.status, ...(await r.json()) };
    } catch {
      return undefined;
    }
  }

  async roles(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const name of this.nodes.keys()) out[name] = (await this.readyz(name))?.role ?? "down";
    return out;
  }

  async lives(): Promise<string[]> {
    return Object.entries(await this.roles()).filter(([, r]) => r === "live").map(([n]) => n);
  }

  /** Polls /readyz every 10 ms until `name` has `role`; returns the ms waited. */
  async waitRole(name: string, role: string, timeoutMs = 30_000): Promise<number> {
    const start = performance.now();
    while (true) {
      const r = await this.readyz(name);
      if (r?.role === role && (role !== "live" || r.status === 200)) return performance.now() - start;
      if (performance.now() - start > timeoutMs) {
        throw new Error(
          `${name} did not become ${role} within ${timeoutMs} ms (roles: ${
            JSON.stringify(await this.roles())
          })`,
        );
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Asserts each named node's role; on a mismatch the error carries the recent HA log lines. */
  async assertRoles(expected: Record<string, string>): Promise<void> {
    const roles = await this.roles();
    for (const [name, role] of Object.entries(expected)) {
      if (roles[name] !== role) {
        const recent = this.transitions().slice(-8).map((t) => `${t.time} ${t.node} -> ${t.to}: ${t.reason}`);
        throw new Error(
          `expected ${name} to be ${role}, roles are ${JSON.stringify(roles)}; recent transitions:\n${
            recent.join("\n")
          }`,
        );
      }
    }
  }

  /** Log lines of HA transitions, from every running node, oldest first. */
  transitions(): { node: string; time: string; to: string; reason: string; msg: string; epoch: number }[] {
    return [...this.nodes.values()].flatMap((n) =>
      (n.bridge?.logs(/./) ?? []).filter((l) => l.ha === true).map((l) => ({
        node: String(l.node),
        time: String(l.time),
        to: String(l.to),
        reason: String(l.reason),
        msg: String(l.msg),
        epoch: Number(l.epoch),
      }))
    ).sort((a, b) => a.time.localeCompare(b.time));
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) {
      if (n.bridge) {
        try {
          n.bridge.signal("SIGCONT");
        } catch { /* gone */ }
        await n.bridge.stop("SIGKILL");
        n.bridge = undefined;
      }
    }
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
