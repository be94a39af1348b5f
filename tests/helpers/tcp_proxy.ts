/**
 * A TCP proxy that can cut its link, like toxiproxy's "delete proxy": cut() drops
 * every connection and refuses new ones; restore() accepts again. With `delayMs`
 * it is a slow link (toxiproxy's "latency"): every chunk arrives that much later,
 * in order, each way. blackhole() makes it a link that drops packets (toxiproxy's
 * "timeout" toxic): connections stay open, and nothing gets through either way
 * until heal().
 */
export class TcpProxy {
  #listener?: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #accepting?: Promise<void>;
  #pipes = new Set<Promise<void>>();
  #blackholed = false;

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
  }

  #pipe(from: Deno.Conn, to: Deno.Conn): void {
    const piped = delayedPipe(from, to, this.delayMs, () => this.#blackholed);
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
 * cap. A chunk read while `swallow()` says so is dropped.
 */
async function delayedPipe(
  from: Deno.Conn,
  to: Deno.Conn,
  delayMs: number,
  swallow: () => boolean,
): Promise<void> {
  const writer = to.writable.getWriter();
  let last = Promise.resolve();
  for await (const chunk of from.readable) {
    if (swallow()) continue;
    if (delayMs === 0) {
      await writer.write(chunk);
      continue;
    }
    const due = performance.now() + delayMs;
    last = last.then(async () => {
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      await writer.write(chunk);
    }).catch(() => {}); // the other side closed: what is left goes nowhere, as on a real link
  }
  await last;
  await writer.close();
}
