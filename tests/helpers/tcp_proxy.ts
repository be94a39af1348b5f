/**
 * A TCP proxy that can cut its link, like toxiproxy's "delete proxy": cut() drops
 * every connection and refuses new ones; restore() accepts again. With `delayMs`
 * it is a slow link (toxiproxy's "latency"): every chunk arrives that much later,
 * in order, each way. blackhole() makes it a link that drops packets (toxiproxy's
 * "timeout" toxic): connections stay open, and nothing gets through either way
 * until heal(), which delivers what was held, as TCP's retransmissions would.
 */
export class TcpProxy {
  #listener?: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #accepting?: Promise<void>;
  #pipes = new Set<Promise<void>>();
  #blackholed = false;
  readonly #healers = new Set<() => void>();

  constructor(readonly listenPort: number, readonly targetPort: number, readonly delayMs = 0) {}

  get up(): boolean {
    return this.#listener !== undefined;
  }

  start(): void {
    if (this.#listener) return;
    const listener = Deno.listen({ hostname: "127.0.0.1", port: this.listenPort });
    this.#listener = listener;
    this.#accepting = (async () => {
      for await (const client of listener) {
        this.#conns.add(client);
        let upstream: Deno.Conn;
        try {
          upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.targetPort });
        } catch {
          this.#close(client);
          continue;
        }
        this.#conns.add(upstream);
        this.#pipe(client, upstream);
        this.#pipe(upstream, client);
      }
    })().catch(() => {});
  }

  /** From now on, bytes are swallowed (connections stay open, new ones are taken), until heal(). */
  blackhole(): void {
    this.#blackholed = true;
  }

  heal(): void {
    this.#blackholed = false;
    for (const flush of this.#healers) flush();
  }

  #pipe(from: Deno.Conn, to: Deno.Conn): void {
    const piped = delayedPipe(from, to, this.delayMs, () => this.#blackholed, (flush) => {
      this.#healers.add(flush);
      return () => this.#healers.delete(flush);
    });
    const p = piped.catch(() => {}).finally(() => {
      this.#close(from);
      this.#close(to);
      this.#pipes.delete(p);
    });
    this.#pipes.add(p);
  }

  #close(c: Deno.Conn): void {
    if (!this.#conns.delete(c)) return;
    try {
      c.close();
    } catch { /* already closed */ }
  }

  /** Drops all connections and stops listening. */
  async cut(): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
    for (const c of [...this.#conns]) this.#close(c);
    await this.#accepting;
    await Promise.all([...this.#pipes]);
  }

  restore(): void {
    this.start();
  }
}

/**
 * Forwards each chunk `delayMs` after it arrived, keeping their order: latency, not a bandwidth
 * cap. Chunks read while `holding()` says so wait until the flush registered with `onHeal` runs.
 */
async function delayedPipe(
  from: Deno.Conn,
  to: Deno.Conn,
  delayMs: number,
  holding: () => boolean,
  onHeal: (flush: () => void) => () => void,
): Promise<void> {
  const writer = to.writable.getWriter();
  let last = Promise.resolve();
  const held: Uint8Array[] = [];
  // The other side closed: what is left goes nowhere, as on a real link.
  const write = (chunk: Uint8Array, due: number) =>
    last = last.then(async () => {
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await writer.write(chunk);
    }).catch(() => {});
  const unregister = onHeal(() => {
    for (const c of held.splice(0)) write(c, 0);
  });
  try {
    for await (const chunk of from.readable) {
      if (holding()) held.push(chunk);
      else write(chunk, performance.now() + delayMs);
    }
    await last;
    await writer.close();
  } finally {
    unregister();
  }
}
