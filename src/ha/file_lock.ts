/**
 * Shared-directory coordination (Artemis shared store style).
 *
 * Files in ha.fileLock.dir:
 * - live.lock: the live holds an exclusive lock on it; nobody reads or writes it.
 * - state.json: epoch, live node, status (live | failing-back | paused), live URL.
 * - node-<id>.json: each node's view (priority, role, Kafka health, readiness) and a
 *   sequence number it bumps every poll; a node whose sequence stops moving for
 *   three polls is considered gone (no wall clocks are compared).
 *
 * The backup tries the lock every pollMs; while the live holds it, the backup also checks
 * every probeMs whether it is free (open, try, close: nothing written), and polls at once
 * when it is, so a crash is taken over within probeMs rather than pollMs. The live re-reads
 * state.json every verifyMs and steps down if it no longer names it. On NFS use v4 only: v3 locks
 * (NLM) can be lost silently, which the state-file check narrows but cannot close.
 */
import type { Config } from "../config/schema.ts";
import type { Logger } from "../observability/logger.ts";
import { BaseCoordinator, type KafkaStatus } from "./coordinator.ts";
import { handoverReason, isBestCandidate, type NodeView } from "./election.ts";
import { readJson, writeJsonAtomic } from "./epoch_store.ts";
import type { HaNode } from "./node.ts";
import { settlesWithin } from "../util/deadline.ts";

interface LiveState {
  epoch: number;
  node: string;
  /** activating: locked, waiting for Kafka to give the activation its epoch. */
  status: "activating" | "live" | "failing-back" | "paused";
  url?: string;
}

const LOCK_TOUCH = new TextEncoder().encode("L");

interface NodeFile extends NodeView {
  seq: number;
}

/** Background attempts (one every verifyMs) to unlock a lock file whose first unlock failed. */
const UNLOCK_RETRIES = 10;

export class FileLockCoordinator extends BaseCoordinator {
  readonly #cfg: Config["ha"];
  readonly #dir: string;
  #lock?: Deno.FsFile;
  #seq = 0;
  readonly #others = new Map<string, { file: NodeFile; changedAt: number }>();
  #lastVerify = 0;
  /** When the live last confirmed its claim (the lock and the state file), or became live. */
  #verifiedAt = 0;
  #cooldownUntil = 0;
  /** A backup that would take the lock were it free: it probes the lock between polls. */
  #waitingForLock = false;
  /** When the last full poll ran (monotonic). */
  #polledAt = -Infinity;

  constructor(cfg: Config["ha"], ha: HaNode, kafka: KafkaStatus, log: Logger) {
    super(ha, kafka, cfg, log.child({ coordinator: "file-lock" }), cfg.fileLock.pollMs);
    this.#cfg = cfg;
    this.#dir = cfg.fileLock.dir!;
  }

  get #statePath() {
    return `${this.#dir}/state.json`;
  }

  async start(): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true });
    const state = await readJson<LiveState>(this.#statePath);
    if (state) this.ha.observeEpoch(state.epoch);
    this.log.info(
      { dir: this.#dir, epoch: state?.epoch ?? 0, live: state?.node },
      "file-lock coordinator started",
    );
  }

  async #publishSelf(now: number): Promise<NodeView> {
    const self = this.ha.view(this.kafka.up, this.readiness.readyFor(now));
    await writeJsonAtomic(`${this.#dir}/node-${this.ha.node}.json`, { ...self, seq: ++this.#seq });
    return self;
  }

  /** Other nodes whose status file changed within the last three polls. */
  async #readOthers(now: number): Promise<NodeView[]> {
    const alive: NodeView[] = [];
    for await (const entry of Deno.readDir(this.#dir)) {
      const m = /^node-(.+)\.json$/.exec(entry.name);
      if (!m || m[1] === this.ha.node) continue;
      // A peer's announcement is advisory: one caught mid-replace (or damaged) is skipped this poll.
      const file = await readJson<NodeFile>(`${this.#dir}/${entry.name}`, "absent");
      if (!file) continue;
      const known = this.#others.get(file.node);
      if (!known || known.file.seq !== file.seq) this.#others.set(file.node, { file, changedAt: now });
      const seen = this.#others.get(file.node)!;
      if (now - seen.changedAt < 3 * this.#cfg.fileLock.pollMs + 100 && file.role !== "stopped") {
        alive.push(file);
      }
    }
    return alive;
  }

  async #tryLock(): Promise<boolean> {
    const f = await Deno.open(`${this.#dir}/live.lock`, { read: true, write: true, create: true });
    if (await f.tryLock(true)) {
      this.#lock = f;
      return true;
    }
    f.close();
    return false;
  }

  /**
   * Lets go of the lock. FsFile.close() is synchronous, and on NFS closing a locked descriptor
   * sends the unlock (and flushes what the last verify wrote) to the server: on a hard mount
   * whose server is gone it would block the event loop, and with it the beats and the stall
   * watch. So the unlock runs first on Deno's blocking pool, and the descriptor is closed once
   * it returned: a hung server keeps one descriptor open until it answers, never the process.
   * Callers that take the lock again next await this (an open descriptor still holds it).
   */
  #release(): Promise<void> {
    const lock = this.#lock;
    this.#lock = undefined;
    if (!lock) return Promise.resolve();
    return lock.unlock().then(
      () => {
        try {
          lock.close();
        } catch (e) {
          this.log.warn({ ha: true, err: (e as Error).message }, "closing the unlocked lock file failed");
        }
      },
      (e) => {
        // The server is in trouble (a lease lost, a soft mount timing out): a synchronous close
        // could block on it. Try the unlock again in the background, and close only once it works.
        this.log.warn(
          { ha: true, err: (e as Error).message },
          "unlocking the lock file failed; retrying in the background, its descriptor stays open meanwhile",
        );
        this.#unlockLater(lock, 1);
      },
    );
  }

  #unlockLater(lock: Deno.FsFile, attempt: number): void {
    const timer = setTimeout(() => {
      lock.unlock().then(() => {
        try {
          lock.close();
        } catch { /* closed meanwhile */ }
        this.log.info({ ha: true, attempt }, "the lock file is unlocked and closed");
      }, () => {
        if (attempt < UNLOCK_RETRIES) return this.#unlockLater(lock, attempt + 1);
        this.log.error({ ha: true }, "the lock file could not be unlocked; the process exit releases it");
      });
    }, this.#cfg.fileLock.verifyMs);
    Deno.unrefTimer(timer); // a retry never keeps a stopping process alive
  }

  protected override nextTickMs(): number {
    return this.#waitingForLock
      ? Math.min(this.#cfg.fileLock.probeMs, this.#cfg.fileLock.pollMs)
      : this.tickMs;
  }

  /** Whether the lock is free now: taken and let go at once (a full poll decides whether to keep it). */
  async #lockFree(): Promise<boolean> {
    if (!(await this.#tryLock())) return false;
    await this.#release();
    return true;
  }

  protected stallLimitMs(): number {
    return this.#cfg.fileLock.verifyMs;
  }

  /**
   * A stalled process keeps its lock on a local disk, but on NFS its lease may have run out
   * meanwhile and a backup may hold the lock now: verify before anything else.
   */
  protected onStall(gapMs: number): void {
    this.log.warn({ ha: true, gapMs: Math.round(gapMs), role: this.ha.heldRole }, "this node stalled");
    this.#lastVerify = -Infinity;
    if (this.ha.heldRole !== "live" || this.transitioning) return;
    // Verify now, beside the loop, rather than after the next poll's file work.
    this.begin(this.#lockLost("live"), async (lost) => {
      if (!lost) {
        this.#lastVerify = this.#verifiedAt = performance.now();
        return;
      }
      await this.ha.demote(`${lost}: lock lost`);
      await this.#release();
    });
  }

  /**
   * The live's claim holds while it verifies it. A tick stuck on the shared directory (a hard
   * NFS mount whose server is gone) stops verifying; the watch then steps down before the NFS
   * lease can run out and hand the lock to a backup (docs/ha.md: keep 3 × verifyMs well
   * under the lease time).
   */
  protected override onWatch(now: number): void {
    const overdue = now - this.#verifiedAt;
    // Not gated on a transition in progress: one hung on the shared directory must not switch
    // this safety net off. Only a step-down already asked for makes it moot.
    if (this.ha.heldRole !== "live" || this.ha.steppingDown || overdue <= 3 * this.#cfg.fileLock.verifyMs) {
      return;
    }
    this.begin(
      this.ha.demote(
        `the shared directory has not confirmed the lock for ${Math.round(overdue)} ms ` +
          `(over 3 × ha.fileLock.verifyMs): stepping down before a backup may take it`,
      ),
      () => this.#release(),
    );
  }

  protected override async afterRenewal(): Promise<void> {
    // The renewal may have taken long: the claim must still be this node's before the state file
    // says so again (written over another node's claim, it would unseat a legitimate live).
    const lost = await this.#lockLost("claimed");
    if (lost) {
      await this.ha.demote(`${lost}: lock lost`);
      return this.#release();
    }
    if (this.ha.heldRole !== "live" || this.ha.steppingDown) return;
    await writeJsonAtomic(this.#statePath, {
      epoch: this.ha.epoch(),
      node: this.ha.node,
      status: "live",
      url: this.ha.url,
    });
  }

  protected claimConfirmed(now: number): boolean {
    return this.#lock !== undefined && now - this.#verifiedAt <= 2 * this.#cfg.fileLock.verifyMs;
  }

  protected async tick(now: number): Promise<void> {
    const waiting = this.#waitingForLock;
    this.#waitingForLock = false;
    // Between polls, a waiting backup only probes the lock; a free one calls for a poll now.
    if (waiting && now - this.#polledAt < this.#cfg.fileLock.pollMs && this.ha.role() === "backup") {
      if (!this.transitioning && !(await this.#lockFree())) {
        this.#waitingForLock = true;
        return;
      }
    }
    this.#polledAt = now;
    const role = this.ha.role();
    // A live that stepped down outside this loop (fenced by Kafka) must not keep the lock; one
    // still draining keeps it, so that no backup activates before it let go (break before make).
    if (this.#lock && !this.transitioning && (role === "backup" || role === "stopped")) {
      await this.#release();
    }
    const self = await this.#publishSelf(now);
    const others = await this.#readOthers(now);
    if (this.transitioning) return this.#verifyWhileRenewing(now);
    if (role === "init") {
      this.ha.announceBackup(`shared dir ${this.#dir}`);
      // A live holds the lock: probe it from now on, so that its death is noticed within probeMs
      // rather than after this node's first poll as a backup (the poll still decides).
      this.#waitingForLock = !(await this.#lockFree());
      return;
    }

    if (role === "live") {
      if (now - this.#lastVerify >= this.#cfg.fileLock.verifyMs) {
        this.#lastVerify = now;
        const lost = await this.#lockLost("live");
        if (lost) {
          return this.begin(this.ha.demote(`${lost}: lock lost`), () => this.#release());
        }
        this.#verifiedAt = performance.now();
      }
      const handover = handoverReason(self, this.readiness.kafkaDownFor(now), others, this.opts);
      // The awaits above may have outlasted this node's claim (the watch stepped it down meanwhile):
      // then state.json is another node's to write.
      if (this.ha.heldRole !== "live" || this.ha.steppingDown) return;
      if (handover && this.mayHandOver(now)) {
        this.budget.record(now);
        this.ha.liveHint = others.find((o) => o.node === handover.to)?.url;
        await writeJsonAtomic(this.#statePath, {
          epoch: this.ha.epoch(),
          node: this.ha.node,
          status: "failing-back",
          url: self.url,
        });
        this.begin(this.ha.demote(handover.reason), () => {
          void this.#release();
          // Let the chosen backup take the lock before this node competes again.
          this.#cooldownUntil = performance.now() + 4 * this.#cfg.fileLock.pollMs;
        });
      }
      return;
    }
    if (role !== "backup") return;
    const state = await readJson<LiveState>(this.#statePath);
    this.ha.liveHint = state?.status === "live" ? state.url : undefined;
    // A live stopped without failover ("paused") keeps its claim until it returns itself.
    if (state?.status === "paused" && state.node !== this.ha.node) return;
    // The cooldown after a handover lets the chosen backup take the lock first: once the state
    // file names another node, it has (it writes the file only while holding the lock).
    if (state && state.node !== this.ha.node) this.#cooldownUntil = 0;
    if (now < this.#cooldownUntil || !self.kafkaUp) return;
    // Defer to a better backup that is also waiting, so the original live wins a free lock.
    if (!isBestCandidate(self, others)) return;
    if (!(await this.#tryLock())) {
      this.#waitingForLock = true;
      return;
    }
    // Claimed under the old epoch until Kafka gives this activation its own.
    await writeJsonAtomic(this.#statePath, {
      epoch: state?.epoch ?? 0,
      node: this.ha.node,
      status: "activating",
      url: self.url,
    });
    const reason = state
      ? `lock free (previous live ${state.node}, ${state.status})`
      : "lock free (first live)";
    this.begin(this.ha.promote(reason), async (ok) => {
      if (!ok) return this.#release();
      // Live from this moment (this runs in the same microtask checkpoint as the role change, so
      // no watch tick comes between): the watch gives the checks below 3 × verifyMs, as it gives
      // every verify. Set only after them, a watch tick meanwhile read "never confirmed" and
      // stepped the new live down at once.
      this.#verifiedAt = performance.now();
      // The lock was last touched before the activation, which may have taken long (and this
      // node may have stalled meanwhile, its NFS lease running out): confirm it, and that no
      // node took it since, before the state file calls this node live.
      const lost = await this.#lockLost("claimed");
      if (lost) {
        await this.ha.demote(`${lost}: lock lost while activating`);
        // Not at once again: a directory too slow to answer would make this a loop of
        // activations (each fencing the producer). A node named in state.json ends the wait.
        this.#cooldownUntil = performance.now() + 3 * this.#cfg.fileLock.verifyMs;
        return this.#release();
      }
      // Stepped down meanwhile (fenced, or the watch): the state file is not this node's to write.
      if (this.ha.heldRole !== "live" || this.ha.steppingDown) return;
      await writeJsonAtomic(this.#statePath, {
        epoch: this.ha.epoch(),
        node: this.ha.node,
        status: "live",
        url: self.url,
      });
      this.#lastVerify = this.#verifiedAt = performance.now();
      // Said at once, not at the next poll: a status file that still reads "backup" (written
      // before the lock was taken) would make a backup defer to this node, were it to die now.
      await this.#publishSelf(this.#verifiedAt);
    });
  }

  /**
   * A live taking a fresh producer epoch (a reactivation, beside the loop) may wait on a slow
   * Kafka for seconds, and is still the live meanwhile: it keeps confirming its lock, or the
   * watch would step it down for want of a verify that the wait, not the directory, held up.
   */
  async #verifyWhileRenewing(now: number): Promise<void> {
    if (this.ha.heldRole !== "live" || this.ha.steppingDown) return;
    if (now - this.#lastVerify < this.#cfg.fileLock.verifyMs) return;
    this.#lastVerify = now;
    // Not the epoch: state.json names the new one only once the reactivation is done.
    const lost = await this.#lockLost("claimed");
    if (!lost) {
      this.#verifiedAt = performance.now();
      return;
    }
    // At once: the reactivation (queued ahead) drops the epoch it gets, and serves nothing more.
    if (!this.ha.steppingDown) this.begin(this.ha.demote(`${lost}: lock lost`), () => this.#release());
  }

  /**
   * Why the lock is no longer this node's, or undefined while it is. A shared directory that
   * does not answer within verifyMs (a hard NFS mount whose server is gone) counts as lost.
   * `live`: state.json must name this node at its epoch; `claimed`: name this node (while
   * the epoch is being taken, state.json still carries the one before).
   */
  async #lockLost(expect: "live" | "claimed"): Promise<string | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<string>((r) => {
      timer = setTimeout(
        () => r(`the shared directory did not answer within ${this.#cfg.fileLock.verifyMs} ms`),
        this.#cfg.fileLock.verifyMs,
      );
    });
    try {
      return await Promise.race([this.#checkLock(expect), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #checkLock(expect: "live" | "claimed"): Promise<string | undefined> {
    try {
      // Write through the descriptor: on NFSv4 a lock whose lease was lost makes I/O on it fail
      // (EIO), where a metadata call may be answered from the cache.
      if (this.#lock) {
        await this.#lock.seek(0, Deno.SeekMode.Start);
        await this.#lock.write(LOCK_TOUCH);
        await this.#lock.syncData();
      }
    } catch (e) {
      return `the lock file descriptor fails (${(e as Error).message})`;
    }
    const state = await readJson<LiveState>(this.#statePath);
    if (!state || state.node !== this.ha.node || (expect === "live" && state.epoch !== this.ha.epoch())) {
      return `state file now names ${state?.node ?? "nobody"} at epoch ${state?.epoch ?? "?"}`;
    }
    return undefined;
  }

  protected async onShutdown(): Promise<void> {
    // A claim lost meanwhile is another node's to describe ("paused" would hold every backup back).
    if (this.ha.isLive && !(await this.#lockLost("live"))) {
      const status = this.opts.failoverOnShutdown ? "failing-back" : "paused";
      await writeJsonAtomic(this.#statePath, {
        epoch: this.ha.epoch(),
        node: this.ha.node,
        status,
        url: this.ha.url,
      });
    }
    await this.ha.demote(
      this.opts.failoverOnShutdown ? "shutdown" : "shutdown (failover on shutdown is off: backups wait)",
      "stopped",
    );
    // Bounded: the process exits next, and the kernel drops the lock with it, hung server or not.
    await settlesWithin(this.#release(), this.#cfg.fileLock.verifyMs);
    const self = this.ha.view(false, 0);
    await writeJsonAtomic(`${this.#dir}/node-${this.ha.node}.json`, { ...self, seq: ++this.#seq });
  }
}
