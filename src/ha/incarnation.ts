/**
 * This node's incarnation and the highest incarnation it has heard from each peer, kept across
 * restarts in `<dataDir>/incarnation-<pairId>-<node>.json` (heartbeat mode; beat.ts says why).
 *
 * - Each start takes max(stored + 1, Date.now()) and writes it before the first beat. The clock is
 *   only a floor, so that a node whose file was lost still starts above what its peers remember
 *   (unless its clock went back); it is never compared with another node's clock.
 * - A peer's incarnation is remembered as soon as it is heard, so a node that restarts still
 *   refuses beats recorded from any earlier incarnation of a peer it had heard. Written in the
 *   background, in order; a failed write loses only that advisory knowledge.
 * - A torn or malformed file stops the node, as for epochs: guessing could reuse an incarnation
 *   whose beats an attacker may have recorded.
 */
import { readJson, UnreadableStateError, writeJsonAtomic } from "./epoch_store.ts";

interface Stored {
  incarnation: number;
  peers: Record<string, number>;
}

const isIncarnation = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 1;

export class UnreadableIncarnationError extends Error {
  constructor(readonly path: string, why: string) {
    super(
      `HA incarnation file ${path} is unreadable (${why}). The node stops here rather than guess its ` +
        `incarnation: peers could take a recorded beat of an earlier start for a current one. ` +
        `Remove the file to start from the clock (peers must restart too if this node's clock went back).`,
    );
    this.name = "UnreadableIncarnationError";
  }
}

export class IncarnationStore {
  #state: Stored = { incarnation: 0, peers: {} };
  #writing: Promise<void> = Promise.resolve();
  #queued = false;

  constructor(readonly path: string) {}

  /** Reads the file, takes this start's incarnation and writes it; returns it with the peers remembered. */
  async begin(now = Date.now()): Promise<Stored> {
    let raw: unknown;
    try {
      raw = await readJson<unknown>(this.path);
    } catch (e) {
      if (e instanceof UnreadableStateError) throw new UnreadableIncarnationError(this.path, "torn or empty");
      throw e;
    }
    const stored = raw === undefined ? { incarnation: 0, peers: {} } : parse(raw, this.path);
    this.#state = { incarnation: Math.max(stored.incarnation + 1, Math.floor(now)), peers: stored.peers };
    await Deno.mkdir(this.path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await writeJsonAtomic(this.path, this.#state);
    return { incarnation: this.#state.incarnation, peers: { ...this.#state.peers } };
  }

  /** Remembers a peer's incarnation when higher than the one kept; settles once it is on disk. */
  remember(node: string, incarnation: number): Promise<void> {
    if ((this.#state.peers[node] ?? 0) >= incarnation) return this.#writing;
    this.#state.peers[node] = incarnation;
    if (!this.#queued) {
      // One write at a time (a later rename must not be overtaken by an earlier one), and one
      // queued write carries every change made meanwhile.
      this.#queued = true;
      this.#writing = this.#writing.catch(() => {}).then(() => {
        this.#queued = false;
        return writeJsonAtomic(this.path, this.#state);
      });
    }
    return this.#writing;
  }
}

function parse(raw: unknown, path: string): Stored {
  const o = raw as Partial<Stored> | null;
  if (o === null || typeof o !== "object" || !isIncarnation(o.incarnation)) {
    throw new UnreadableIncarnationError(path, "no incarnation");
  }
  const peers = o.peers ?? {};
  if (typeof peers !== "object" || peers === null || Array.isArray(peers)) {
    throw new UnreadableIncarnationError(path, "peers is not an object");
  }
  for (const [node, inc] of Object.entries(peers)) {
    if (!isIncarnation(inc)) throw new UnreadableIncarnationError(path, `peer ${node.slice(0, 100)}`);
  }
  return { incarnation: o.incarnation, peers: { ...peers } };
}
