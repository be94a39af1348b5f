/** A small JSON file written atomically (temp file + rename), for epochs and HA state. */

export async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return undefined;
    throw e;
  }
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(value));
  await Deno.rename(tmp, path);
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
