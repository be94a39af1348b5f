/**
 * A protocol v1 test client on Deno's own WebSocket: an implementation independent
 * of the bridge's npm:ws server.
 */
// deno-lint-ignore no-explicit-any
export type Frame = Record<string, any>;

export class TestClient {
  readonly frames: Frame[] = [];
  /** Told every frame as it arrives (e.g. to commit each message). */
  onFrame?: (f: Frame) => void;
  readonly closed: Promise<CloseEvent>;
  #waiters: { pred: (f: Frame) => boolean; resolve(f: Frame): void; reject(e: Error): void }[] = [];
  #seq = 0;

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((r) =>
      ws.addEventListener("close", (e) => {
        r(e);
        // Nothing more can arrive: fail whoever still waits.
        for (const w of this.#waiters.splice(0)) {
          w.reject(new Error(`connection closed (code ${e.code}) while waiting`));
        }
      }, { once: true })
    );
    ws.addEventListener("message", (e) => {
      const f = JSON.parse(e.data as string) as Frame;
      this.frames.push(f);
      this.onFrame?.(f);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(f)) return true;
        w.resolve(f);
        return false;
      });
    });
  }

  /** `socket`: an already-opening socket with options Deno's lacks (e.g. npm:ws with a CA for wss://). */
  static async connect(url: string, socket?: WebSocket): Promise<TestClient> {
    const ws = socket ?? new WebSocket(url);
    const c = new TestClient(ws);
    await new Promise<void>((res, rej) => {
      ws.addEventListener("open", () => res(), { once: true });
      ws.addEventListener("error", () => rej(new Error(`cannot connect to ${url}`)), { once: true });
    });
    await c.waitFor((f) => f.op === "welcome" || f.op === "error");
    return c;
  }

  get welcome(): Frame | undefined {
    return this.frames.find((f) => f.op === "welcome");
  }

  send(frame: Frame): void {
    this.ws.send(JSON.stringify(frame));
  }

  sendRaw(text: string): void {
    this.ws.send(text);
  }

  nextId(prefix = "r"): string {
    return `${prefix}${++this.#seq}`;
  }

  /** Resolves with the first frame (already received or coming) matching pred. */
  waitFor(pred: (f: Frame) => boolean, timeoutMs = 15_000, what = "frame"): Promise<Frame> {
    const seen = this.frames.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; last frames: ${
              JSON.stringify(this.frames.slice(-3))
            }`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        pred,
        resolve: (f: Frame) => (clearTimeout(timer), resolve(f)),
        reject: (e: Error) => (clearTimeout(timer), reject(e)),
      };
      this.#waiters.push(waiter);
    });
  }

  /** Waits until `count` frames match pred, and returns them. */
  async waitForCount(pred: (f: Frame) => boolean, count: number, timeoutMs = 20_000): Promise<Frame[]> {
    const until = performance.now() + timeoutMs;
    while (this.frames.filter(pred).length < count) {
      if (performance.now() > until) {
        throw new Error(
          `timed out: ${this.frames.filter(pred).length} of ${count} frames; last: ${
            JSON.stringify(this.frames.slice(-2))
          }`,
        );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    return this.frames.filter(pred);
  }

  /** Sends a request and waits for the frame answering its id. */
  request(frame: Frame, timeoutMs?: number): Promise<Frame> {
    const id = frame.id ?? this.nextId();
    this.send({ ...frame, id });
    return this.waitFor((f) => f.id === id, timeoutMs, `reply to ${frame.op} ${id}`);
  }

  async publish(topic: string, value: string, extra: Frame = {}): Promise<Frame> {
    return await this.request({ op: "publish", topic, value, ...extra });
  }

  async subscribe(topic: string, extra: Frame = {}): Promise<Frame> {
    const id = this.nextId("s");
    const reply = await this.request({ op: "subscribe", id, sub: id, topic, ...extra }, 30_000);
    if (reply.op !== "subscribed") throw new Error(`subscribe failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  messages(sub?: string): Frame[] {
    return this.frames.filter((f) => f.op === "message" && (sub === undefined || f.sub === sub));
  }

  async close(): Promise<void> {
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.close(1000);
    await this.closed;
  }
}
