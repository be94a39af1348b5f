/**
 * Small JSON files for epochs and HA state, written durably: the data is on disk before the
 * rename makes it the file, and the rename is on disk before the write returns. A crash or
 * power loss then leaves the old file or the new one, never a torn or empty one.
 */

export class UnreadableStateError extends Error {
  constructor(readonly path: string, why: string) {
    super(
      `HA state file ${path} is unreadable (${why}). The node stops here rather than guess what it ` +
        `held (which node is live and at what epoch, or a peer's incarnation that keeps replayed beats ` +
        `out). Check which node is live, then restore or remove the file.`,
    );
    this.name = "UnreadableStateError";
  }
}

/**
 * The file's JSON, or undefined when there is no file. A file that is there but not JSON is
 * an error (`torn: "error"`, for state that epochs hang on) or counts as absent (`"absent"`,
 * for advisory files such as a peer's last announcement).
 */
export async function readJson<T>(path: string, torn: "error" | "absent" = "error"): Promise<T | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    if (torn === "absent") return undefined;
    throw new UnreadableStateError(path, text.length === 0 ? "empty" : (e as Error).message);
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(value));
    for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
    await file.sync(); // the data, before the name points at it
  } finally {
    file.close();
  }
  await Deno.rename(tmp, path);
  await syncDir(path.replace(/\/[^/]*$/, "") || ".");
}

/** fsync of a directory makes a rename in it durable (Linux: open it read-only, then fsync). */
async function syncDir(dir: string): Promise<void> {
  const d = await Deno.open(dir, { read: true });
  try {
    await d.sync();
  } catch (e) {
    // Some file systems (and platforms) refuse fsync on a directory; the rename is still atomic.
    if (!(e instanceof Deno.errors.PermissionDenied) && !(e instanceof Deno.errors.InvalidData)) {
      if (!/EINVAL|EBADF|not supported/i.test((e as Error).message)) throw e;
    }
  } finally {
    d.close();
  }
}

/** The highest epoch this node has used, kept across restarts (heartbeat mode). */
export class EpochStore {
  constructor(readonly path: string) {}

  async read(): Promise<number> {
    return (await readJson<{ epoch: number }>(this.path))?.epoch ?? 0;
  }

  async write(epoch: number): Promise<void> {
    await Deno.mkdir(this.path.replace(/\/[^/]*$/, "") || ".", { recursive: true });
    await writeJsonAtomic(this.path, { epoch });
  }
}
