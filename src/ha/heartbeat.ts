/**
 * Peer-heartbeat coordination (NATS FT / keepalived style), no shared storage.
 *
 * UDP, not TCP: a heartbeat is a small, self-contained, idempotent datagram where a
 * late copy is worthless, and UDP has no connection state to time out or rebuild
 * after a partition, so "no datagram for deadIntervalMs" is the whole failure
 * detector. Each node beats every intervalMs to every peer; a peer silent for
 * deadIntervalMs is dead. Wall clocks are never compared: durations in beats are
 * measured by the sender's monotonic clock.
 *
 * Beats are believed only when they come from a configured peer's address, carry the pair's
 * HMAC (ha.heartbeat.keyFile), pass every field check and are fresh (beat.ts: ordered incarnations,
 * persisted by incarnation.ts): a forged, replayed or malformed beat is counted, logged once a minute
 * per reason, and otherwise ignored.
 */
import dgram from "node:dgram";
import type { Buffer } from "node:buffer";
import type { RemoteInfo } from "node:dgram";
import type { Config } from "../config/schema.ts";
import type { Logger } from "../observability/logger.ts";
import { BaseCoordinator, type KafkaStatus } from "./coordinator.ts";
import { handoverReason, isBestCandidate, losesLiveConflict, type NodeView } from "./election.ts";
import {
  type Beat,
  BEAT_VERSION,
  BeatFreshness,
  type BeatRejection,
  decodeBeat,
  encodeBeat,
} from "./beat.ts";
import { EpochStore } from "./epoch_store.ts";
import { IncarnationStore } from "./incarnation.ts";
import type { LiveMarks } from "./live_marks.ts";
import type { HaNode } from "./node.ts";
import { PeerAddresses } from "./peer_addresses.ts";

/** Shortest shared key accepted: 256 bits, the size of the HMAC-SHA256 block's security. */
export const MIN_KEY_BYTES = 32;

/** The shared key from its file (surrounding whitespace ignored); a clear error when unusable. */
export async function readBeatKey(path: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new Error(`cannot read ha.heartbeat.keyFile ${path}: ${(e as Error).message}`);
  }
  const key = new TextEncoder().encode(text.trim());
  if (key.length < MIN_KEY_BYTES) {
    throw new Error(
      `ha.heartbeat.keyFile ${path} holds ${key.length} bytes; use at least ${MIN_KEY_BYTES} ` +
        `(e.g. openssl rand -base64 48 > ${path})`,
    );
  }
  return key;
}

interface Peer {
  beat: Beat;
  lastSeen: number;
}

/**
 * Kafka's view of the pair, through the dedupe log (src/ha/live_marks.ts): unset when the
 * dedupe log is off, and then a cut heartbeat link is judged by heartbeats alone.
 */
export interface KafkaLiveMarks {
  marks: LiveMarks;
  /** Writes this live's mark (through the pair's transactional producer: a fenced node cannot). */
  write(epoch: number, seq: number): Promise<unknown>;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(":");
  return { host: s.slice(0, i), port: Number(s.slice(i + 1)) };
}

export class HeartbeatCoordinator extends BaseCoordinator {
  readonly #cfg: Config["ha"];
  readonly #socket = dgram.createSocket("udp4");
  readonly #peers = new Map<string, Peer>();
  readonly #epochs: EpochStore;
  /** No election before this time: after a start or a stall, peers must be heard afresh first. */
  #listenUntil: number;
  #lastRoleSent?: string;
  #beating?: ReturnType<typeof setInterval>;
  #paused = false;
  /** The pair's shared HMAC key (ha.heartbeat.keyFile); set by start(), before the socket opens. */
  #key!: Uint8Array;
  readonly #incarnations: IncarnationStore;
  /** Set by start(), before the first beat goes out. */
  #incarnation = 0;
  #seq = 0;
  #fresh = new BeatFreshness();
  readonly #peerAddresses: PeerAddresses;
  /** When each rejection reason was last logged: one line a minute per reason, however many arrive. */
  readonly #loggedAt = new Map<BeatRejection, number>();
  #markSeq = 0;
  /** When this node last stepped down because it could not confirm its claim (see afterUnconfirmedStepDown). */
  #unconfirmedAt?: number;
  #markWriting = false;
  /** The live Kafka named when this backup last held back for it (logged once per live). */
  #heldBackFor?: string;

  constructor(
    cfg: Config["ha"],
    ha: HaNode,
    kafka: KafkaStatus,
    log: Logger,
    readonly kafkaMarks?: KafkaLiveMarks,
  ) {
    // Decide every 50 ms (beats still go out every intervalMs), so a dead peer is acted on promptly.
    super(ha, kafka, cfg, log.child({ coordinator: "heartbeat" }), Math.min(50, cfg.heartbeat.intervalMs));
    this.#cfg = cfg;
    this.#epochs = new EpochStore(`${cfg.dataDir}/epoch-${cfg.pairId}-${ha.node}.json`);
    this.#incarnations = new IncarnationStore(`${cfg.dataDir}/incarnation-${cfg.pairId}-${ha.node}.json`);
    this.#listenUntil = performance.now() + cfg.heartbeat.deadIntervalMs;
    this.#peerAddresses = new PeerAddresses(cfg.heartbeat.peers.map((p) => hostPort(p).host));
  }

  async start(): Promise<void> {
    const { keyFile } = this.#cfg.heartbeat;
    // The config schema requires it in heartbeat mode; this only guards a config built around it.
    if (!keyFile) {
      throw new Error("ha.heartbeat.keyFile is required in heartbeat mode (see docs/security.md)");
    }
    this.#key = await readBeatKey(keyFile);
    // Before the socket opens: every beat heard is judged against the incarnations remembered.
    const { incarnation, peers } = await this.#incarnations.begin();
    this.#incarnation = incarnation;
    this.#fresh = new BeatFreshness(peers);
    await this.#peerAddresses.refresh();
    const { host, port } = hostPort(this.#cfg.heartbeat.listen);
    this.#socket.on("message", (msg: Buffer, from: RemoteInfo) => this.#receive(msg, from));
    this.#socket.on("error", (e: Error) => this.log.warn({ err: e.message }, "heartbeat socket error"));
    await new Promise<void>((resolve, reject) => {
      this.#socket.once("error", reject);
      this.#socket.bind(port, host, () => {
        this.#socket.off("error", reject);
        resolve();
      });
    });
    const stored = await this.#epochs.read();
    await this.#epochs.write(stored); // fail at start, not at the first election, if dataDir is not writable
    this.ha.observeEpoch(stored);
    // Beats go out on their own timer, so they continue while a decision (a drain) is in progress:
    // a draining live must not look dead, or the backup would activate before it let go.
    this.#beating = setInterval(() => this.#beat(), this.#cfg.heartbeat.intervalMs);
    this.log.info(
      { listen: this.#cfg.heartbeat.listen, peers: this.#cfg.heartbeat.peers, epoch: stored, incarnation },
      "heartbeat coordinator started",
    );
  }

  #receive(msg: Buffer, from: RemoteInfo): void {
    const now = performance.now();
    if (!this.#peerAddresses.allows(from.address, now)) {
      return this.#reject("not_a_peer", `from ${from.address}:${from.port}, not a configured peer`, now);
    }
    const decoded = decodeBeat(msg, this.#key, this.#cfg.pairId);
    if (!decoded.ok) return this.#reject(decoded.reason, decoded.detail, now, from);
    const beat = decoded.beat;
    if (beat.node === this.ha.node) return this.#reject("own_node", `claims to be ${beat.node}`, now, from);
    const fresh = this.#fresh.accept(beat.node, beat.incarnation, beat.seq);
    if (!fresh.fresh) return this.#reject("replayed", `${beat.node}: ${fresh.detail}`, now, from);
    if (fresh.newIncarnation) {
      this.#incarnations.remember(beat.node, beat.incarnation).catch((e) =>
        this.log.warn(
          { ha: true, err: (e as Error).message },
          "cannot save a peer's incarnation; after a restart this node would take its older beats again",
        )
      );
    }
    this.#peers.set(beat.node, { beat, lastSeen: now });
    this.ha.observeEpoch(beat.epoch);
  }

  #reject(reason: BeatRejection, detail: string, now: number, from?: RemoteInfo): void {
    this.ha.metrics.haBeatsRejected.inc({ reason });
    const last = this.#loggedAt.get(reason);
    if (last !== undefined && now - last < 60_000) return;
    this.#loggedAt.set(reason, now);
    this.log.warn(
      { ha: true, reason, detail, from: from && `${from.address}:${from.port}` },
      "heartbeat ignored (logged once a minute per reason)",
    );
  }

  #beat(): void {
    const now = performance.now();
    this.checkStall(now); // a node back from a stall must not speak for the role it had
    const view = this.ha.view(this.kafka.up, this.readiness.readyFor(now));
    this.#lastRoleSent = view.role;
    this.#send(view);
    if (view.role === "live" && this.#alive(now).length === 0) this.#writeLiveMark(view.epoch);
  }

  /** A live that hears no peer tells Kafka it serves, once per beat, one write at a time. */
  #writeLiveMark(epoch: number): void {
    if (!this.kafkaMarks || this.#markWriting) return;
    this.#markWriting = true;
    this.kafkaMarks.write(epoch, ++this.#markSeq).catch((e) =>
      this.log.debug({ ha: true, err: (e as Error).message }, "live mark not written")
    ).finally(() => (this.#markWriting = false));
  }

  #send(view: NodeView): void {
    const beat: Beat = {
      v: BEAT_VERSION,
      pair: this.#cfg.pairId,
      incarnation: this.#incarnation,
      seq: ++this.#seq,
      ...view,
      paused: this.#paused || undefined,
    };
    const data = encodeBeat(beat, this.#key);
    for (const peer of this.#cfg.heartbeat.peers) {
      const { host, port } = hostPort(peer);
      this.#socket.send(data, port, host);
    }
  }

  /** Peers heard from within the dead interval. */
  #alive(now: number): Beat[] {
    const dead = this.#cfg.heartbeat.deadIntervalMs;
    return [...this.#peers.values()].filter((p) => now - p.lastSeen < dead && p.beat.role !== "stopped").map((
      p,
    ) => p.beat);
  }

  /**
   * A peer times this node out one dead interval after the last beat that got out, which may
   * have left up to one interval before the stall began: so a stall of dead - interval already
   * may have let a backup take over.
   */
  protected stallLimitMs(): number {
    const { deadIntervalMs, intervalMs } = this.#cfg.heartbeat;
    return Math.max(deadIntervalMs - intervalMs, 100);
  }

  /**
   * Stepped down for want of a confirmed claim, not fenced: nothing says another live exists.
   * With live marks, three dead intervals of reading them tell (a live cut off from this node
   * marks every interval); without them, hold back as a fenced node does.
   */
  protected override afterUnconfirmedStepDown(now: number): void {
    if (this.kafkaMarks) this.#unconfirmedAt = now;
    else super.afterUnconfirmedStepDown(now);
  }

  protected override async afterRenewal(): Promise<void> {
    await this.#epochs.write(this.ha.epoch());
  }

  protected onStall(gapMs: number, now: number): void {
    const { deadIntervalMs } = this.#cfg.heartbeat;
    // Beats that arrived meanwhile are still queued: forget peers and hear them afresh.
    this.#peers.clear();
    this.#listenUntil = now + deadIntervalMs;
    const role = this.ha.heldRole; // role() reads "draining" now: the watch is overdue
    this.log.warn({ ha: true, gapMs: Math.round(gapMs), role }, "this node stalled");
    if (role === "live" || role === "activating") {
      this.begin(
        this.ha.demote(
          `this node stalled for ${
            Math.round(gapMs)
          } ms (over ${deadIntervalMs} ms); a backup may have taken over`,
        ),
      );
    }
  }

  protected claimConfirmed(now: number): boolean {
    const peers = this.#alive(now);
    return peers.length > 0 && !peers.some((p) => p.role === "live" || p.role === "activating");
  }

  protected tick(now: number): Promise<void> {
    this.#decide(now);
    return Promise.resolve();
  }

  #decide(now: number): void {
    const { deadIntervalMs } = this.#cfg.heartbeat;
    const self = this.ha.view(this.kafka.up, this.readiness.readyFor(now));
    if (self.role !== this.#lastRoleSent) this.#beat(); // tell peers of a role change at once
    const peers = this.#alive(now);
    const role = this.ha.role();
    if (role === "backup" || role === "init") {
      this.ha.liveHint = peers.find((p) => p.role === "live")?.url;
    }
    // Listen for one dead interval before deciding anything: a cold start must see its peers first.
    if (now < this.#listenUntil || this.transitioning) return;
    if (role === "init") {
      return this.ha.announceBackup(
        peers.length ? `peers: ${peers.map((p) => `${p.node}(${p.role})`).join(", ")}` : "no peer heard yet",
      );
    }

    if (role === "live") {
      const rival = peers.find((p) =>
        (p.role === "live" || p.role === "activating") && losesLiveConflict(self, p)
      );
      if (rival) return this.begin(this.ha.demote(`another live: ${rival.node} at epoch ${rival.epoch}`));
      const handover = handoverReason(self, this.readiness.kafkaDownFor(now), peers, this.opts);
      if (handover && this.mayHandOver(now)) {
        this.budget.record(now);
        this.ha.liveHint = peers.find((p) => p.node === handover.to)?.url;
        this.begin(this.ha.demote(handover.reason));
      }
      return;
    }
    if (role !== "backup") return;
    const live = peers.find((p) => p.role === "live" || p.role === "activating" || p.role === "draining");
    // A paused live is waited for after it falls silent (failoverOnShutdown: false promises that),
    // so not filtered by liveness. A replayed "paused" cannot pin this: #peers holds each node's
    // highest incarnation only, and any beat of a higher one replaces it.
    const pausedLive = [...this.#peers.values()].find((p) => p.beat.paused);
    if (live || pausedLive) return;
    if (!self.kafkaUp || !isBestCandidate(self, peers)) return;
    // Fenced means another live exists even if we cannot hear it (a cut heartbeat link): do not
    // fence it back. Wait until a peer is heard again, or for ten dead intervals.
    const fencedAt = this.ha.fencedAt;
    if (fencedAt !== undefined && now - fencedAt < 10 * deadIntervalMs) {
      const heardSince = [...this.#peers.values()].some((p) => p.lastSeen > fencedAt);
      if (!heardSince) return;
    }
    if (this.#unconfirmedAt !== undefined && now - this.#unconfirmedAt < 3 * deadIntervalMs) return;
    // No live heard, but Kafka shows one serving (its marks keep advancing): the heartbeat link
    // is cut, not the live dead. Fencing it would only start a round of fencing back and forth.
    const kafkaLive = this.kafkaMarks?.marks.activeLive(
      now,
      3 * deadIntervalMs,
      (node) => this.#peers.get(node)?.lastSeen,
    );
    if (kafkaLive) {
      if (this.#heldBackFor !== `${kafkaLive.node}@${kafkaLive.epoch}`) {
        this.#heldBackFor = `${kafkaLive.node}@${kafkaLive.epoch}`;
        this.log.warn(
          { ha: true, live: kafkaLive.node, epoch: kafkaLive.epoch },
          "no heartbeat from any live, but Kafka shows one serving: the heartbeat link is cut; not taking over",
        );
      }
      return;
    }
    this.#heldBackFor = undefined;
    const last = [...this.#peers.values()].find((p) => ["live", "draining", "stopped"].includes(p.beat.role));
    const reason = !last
      ? "no live in the pair"
      : last.beat.role === "stopped"
      ? `${last.beat.node} stopped and handed over`
      : `${last.beat.node} is gone (no heartbeat for ${deadIntervalMs} ms)`;
    this.begin(this.ha.promote(reason), async (ok) => {
      // Kept across restarts, to show the last epoch known before the first election.
      if (ok) await this.#epochs.write(this.ha.epoch());
    });
  }

  protected async onShutdown(): Promise<void> {
    const wasLive = this.ha.isLive;
    if (wasLive && !this.opts.failoverOnShutdown) this.#paused = true;
    // Beats keep going (role "draining") until the drain is over, then say "stopped".
    await this.ha.demote(
      this.#paused ? "shutdown (failover on shutdown is off: backups wait)" : "shutdown",
      "stopped",
    );
    // Tell peers at once, so a backup takes over without waiting for the dead interval.
    clearInterval(this.#beating);
    const view = this.ha.view(false, 0);
    for (let i = 0; i < 3; i++) {
      this.#send(view);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise<void>((r) => this.#socket.close(() => r()));
  }
}
