/**
 * EdgeBridgeClient: a failover-aware connection to a live/backup pair of bridges. It owns the
 * link (which URL, when to retry, what `welcome` said) and hands frames to the publisher (an
 * outbox of unanswered publishes, resent with the same seq after a reconnect so the bridge can
 * drop duplicates; publisher.ts) and to subscriptions, which resume without a gap
 * (subscription.ts). Web standards only: it runs unchanged in Deno and in browsers.
 */
import { TypedEventTarget } from "./typed_events.ts";
import { principalNamespace } from "../protocol/namespace.ts";
import type { WelcomeFrame } from "../protocol/frames.ts";
import { Backoff, type BackoffOptions } from "./backoff.ts";
import { ClientClosedError } from "./errors.ts";
import { type InboundFrame, type Link, type LinkClosed, openLink } from "./link.ts";
import { Outbox, type OutboxLimits } from "./outbox.ts";
import { type PublishAck, Publisher, type PublishOptions } from "./publisher.ts";
import { type SubscribeOptions, Subscription, type SubscriptionHost } from "./subscription.ts";
import { liveFromReason, UrlRing } from "./urls.ts";

export interface EdgeBridgeClientOptions {
  /** Bridge WebSocket URLs, tried in order (e.g. the live and the backup of a pair). */
  urls: string[];
  /** Sent in `hello`; the bridge attributes publishes (and exactly-once seqs) to it. Default: a random UUID. */
  clientId?: string;
  outbox?: OutboxLimits;
  backoff?: BackoffOptions;
  /** Give up on a node that has not sent `welcome` within this many ms (default 10000). */
  connectTimeoutMs?: number;
  /** A WebSocket implementation (default: the global one). */
  WebSocket?: typeof WebSocket;
  /**
   * A JWT or API key for bridges that require one. A function is called for each connection,
   * and again when the bridge says the token is about to expire (a fresh one is then sent).
   */
  token?: string | (() => string | Promise<string>);
  /**
   * How the token travels: "frame" (default) sends it in a first `auth` frame; "protocol" offers it
   * as the "bearer.<token>" WebSocket subprotocol. Neither puts it in the URL.
   */
  tokenVia?: "frame" | "protocol";
}

export interface ConnectionState {
  status: "connecting" | "open" | "closed";
  /** The bridge connected to, or being tried. */
  url?: string;
  node?: string;
  role?: string;
  epoch?: number;
  /** The highest HA epoch seen from any node (welcome or ack). */
  highestEpoch: number;
  /** Failed attempts since the last connection that served. */
  attempt: number;
}

export interface LogLine {
  level: "info" | "warn" | "error";
  message: string;
  time: Date;
}

interface ClientEventMap {
  state: CustomEvent<ConnectionState>;
  log: CustomEvent<LogLine>;
}

export class EdgeBridgeClient extends TypedEventTarget<ClientEventMap> {
  #clientId: string;
  /** Without a clientId option, a token's principal names the client ("<principal>.<uuid>") once known. */
  readonly #clientIdGiven: boolean;
  readonly #token?: () => string | Promise<string>;
  readonly #tokenVia: "frame" | "protocol";
  /** This client object's own id, sent in `hello`: its seqs never collide with another run's. */
  readonly instance: string = crypto.randomUUID();
  readonly #WS: typeof WebSocket;
  readonly #ring: UrlRing;
  readonly #backoff: Backoff;
  /** Delays before resending publishes (or subscribes) refused with a retryable code. */
  readonly #retry: Backoff;
  readonly #publisher: Publisher;
  readonly #connectTimeoutMs: number;
  readonly #subs = new Map<string, Subscription>();
  readonly #host: SubscriptionHost;
  readonly #stop = new AbortController();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  #state: ConnectionState = { status: "connecting", highestEpoch: 0, attempt: 0 };
  #link?: Link;
  #limits?: WelcomeFrame["limits"];
  /** The link got an answer to real work (so the node is healthy: the backoff starts over). */
  #served = false;
  /** Nodes skipped in a row for an epoch older than one seen; after a full round, one is accepted. */
  #staleSkips = 0;
  /** URLs tried since the round began, and whether any of their nodes answered. */
  #round = { tried: 0, answered: false };
  #subCount = 0;
  #requestCount = 0;
  #closing = false;
  #closed?: Promise<void>;
  #readyWaiters: PromiseWithResolvers<void>[] = [];
  readonly #loop: Promise<void>;

  constructor(opts: EdgeBridgeClientOptions) {
    super();
    this.#ring = new UrlRing(opts?.urls);
    this.#clientId = opts.clientId ?? crypto.randomUUID();
    this.#clientIdGiven = opts.clientId !== undefined;
    const token = opts.token;
    if (token !== undefined && typeof token !== "function" && (typeof token !== "string" || token === "")) {
      throw new TypeError("token must be a non-empty string, or a function that returns one");
    }
    this.#token = token === undefined ? undefined : typeof token === "function" ? token : () => token;
    this.#tokenVia = opts.tokenVia ?? "frame";
    if (this.#tokenVia !== "frame" && this.#tokenVia !== "protocol") {
      throw new TypeError(`tokenVia must be "frame" or "protocol", got ${JSON.stringify(opts.tokenVia)}`);
    }
    if (typeof this.#clientId !== "string" || this.#clientId === "" || this.#clientId.length > 200) {
      throw new TypeError(
        `clientId must be a string of 1 to 200 characters, got ${JSON.stringify(opts.clientId)}`,
      );
    }
    this.#backoff = new Backoff(opts.backoff);
    this.#retry = new Backoff(opts.backoff);
    this.#publisher = new Publisher(new Outbox(opts.outbox), this.#retry, {
      limits: () => this.#link ? this.#limits : undefined,
      send: (text) => this.#link?.send(text) ?? false,
      answered: () => void (this.#served = true),
      sawEpoch: (epoch) => {
        if (epoch > this.#state.highestEpoch) this.#setState({ highestEpoch: epoch });
      },
      timer: (ms, fn) => void this.#timer(ms, fn),
      log: (level, message) => this.#log(level, message),
    });
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    const WS = opts.WebSocket ?? globalThis.WebSocket;
    if (typeof WS !== "function") throw new TypeError("no WebSocket implementation: pass options.WebSocket");
    this.#WS = WS;
    this.#host = {
      send: (frame) => this.#link?.send(JSON.stringify(frame)) ?? false,
      nextId: () => `r${++this.#requestCount}`,
      maxCredit: () => this.#limits?.maxCredit,
      log: (level, message) => this.#log(level, message),
      retryLater: (sub) => this.#retrySubscribe(sub),
      afterRetryDelay: (run) => {
        const link = this.#link;
        this.#timer(this.#retry.next(), () => {
          if (this.#link === link) run();
        });
      },
      forget: (sub) => {
        if (this.#subs.get(sub.name) === sub) this.#subs.delete(sub.name);
      },
    };
    this.#loop = this.#run();
  }

  /** Sent in `hello`: the clientId option, or a random one (under the token's principal, once connected). */
  get clientId(): string {
    return this.#clientId;
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Publishes sent or queued and not answered yet. */
  get pending(): number {
    return this.#publisher.pending;
  }

  /** Resolves when a live connection is open; rejects if the client closes first. */
  ready(): Promise<void> {
    if (this.#state.status === "open") return Promise.resolve();
    if (this.#state.status === "closed") {
      return Promise.reject(new ClientClosedError("no connection will open"));
    }
    const w = Promise.withResolvers<void>();
    this.#readyWaiters.push(w);
    return w.promise;
  }

  /** The current state, then each change; ends when the client is closed. */
  async *states(): AsyncGenerator<ConnectionState, void, undefined> {
    const queue: ConnectionState[] = [this.#state];
    let wake: (() => void) | undefined;
    const onState = (e: CustomEvent<ConnectionState>) => {
      queue.push(e.detail);
      wake?.();
    };
    this.addEventListener("state", onState);
    try {
      while (true) {
        while (queue.length) {
          const s = queue.shift()!;
          yield s;
          if (s.status === "closed") return;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.removeEventListener("state", onState);
    }
  }

  /**
   * Publishes one record; resolves with its Kafka position once the bridge acks it. It is
   * kept (and resent after reconnects and retryable refusals) until answered for good.
   */
  publish(topic: string, value: unknown, opts: PublishOptions = {}): Promise<PublishAck> {
    if (this.#closing) {
      return Promise.reject(new ClientClosedError(`publish to "${topic}" refused; create a new client`));
    }
    return this.#publisher.publish(topic, value, opts);
  }

  /** Subscribes to a topic; iterate the result with `for await`. */
  subscribe(topic: string, opts: SubscribeOptions = {}): Subscription {
    if (this.#closing) throw new ClientClosedError(`subscribe to "${topic}" refused; create a new client`);
    const sub = new Subscription(`s${++this.#subCount}`, topic, opts, this.#host);
    this.#subs.set(sub.name, sub);
    if (this.#link) sub.attach();
    return sub;
  }

  /**
   * Drains, then closes: takes no more publishes, waits (up to `timeoutMs`, default 10000)
   * for every publish to be answered and every subscription to be unsubscribed, then closes
   * the socket. Publishes still unanswered then reject with PublishError CLIENT_CLOSED.
   */
  close(opts: { timeoutMs?: number } = {}): Promise<void> {
    return this.#closed ??= this.#close(opts.timeoutMs ?? 10_000);
  }

  // ---- connection loop ----

  async #run(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const { why, answered } = await this.#connectOnce();
      if (this.#stop.signal.aborted) break;
      // The list is one round: its URLs are tried one after another after only a short jitter,
      // and the exponential delay grows once per round, not once per URL. A round in which a
      // node answered (a backup refusing, a live that stepped down) is a failover under way: its
      // delays stay short, so the client is back within moments of the new live serving.
      this.#round.tried++;
      this.#round.answered ||= answered;
      let delay: number;
      if (this.#round.tried < this.#ring.urls.length) delay = this.#backoff.jitter(this.#backoff.initialMs);
      else {
        delay = this.#backoff.next(this.#round.answered);
        this.#round = { tried: 0, answered: false };
      }
      this.#log("warn", `${why}; retrying in ${delay} ms`);
      this.#setState({
        status: "connecting",
        url: this.#ring.current,
        node: undefined,
        role: undefined,
        epoch: undefined,
        attempt: this.#backoff.attempt,
      });
      await this.#sleep(delay);
    }
  }

  /**
   * One attempt: connect, serve until the link drops. Returns why it ended (printable), and
   * whether a node answered (refused, or served): the pair is up, a live is coming.
   */
  async #connectOnce(): Promise<{ why: string; answered: boolean }> {
    const url = this.#ring.current;
    this.#setState({
      status: "connecting",
      url,
      node: undefined,
      role: undefined,
      epoch: undefined,
      attempt: this.#backoff.attempt,
    });
    this.#log("info", `connecting to ${url}`);
    let token: string | undefined;
    try {
      token = this.#token ? await this.#token() : undefined;
    } catch (e) {
      this.#ring.next();
      return { why: `the token function failed: ${(e as Error).message}`, answered: false };
    }
    const outcome = await openLink(url, this.#WS, this.#connectTimeoutMs, this.#stop.signal, {
      onFrame: (f) => this.#onFrame(f),
      onClose: () => {},
      onGarbage: (text) => this.#log("warn", `ignored a frame that is not JSON: ${text.slice(0, 80)}`),
    }, token === undefined ? undefined : { token, via: this.#tokenVia });
    if (!outcome.ok) {
      if (outcome.code === 4001 || outcome.live !== undefined) {
        this.#ring.next(outcome.live);
        return { why: `${url} is a backup; live is ${outcome.live ?? "not known yet"}`, answered: true };
      }
      this.#ring.next();
      return { why: `cannot connect to ${url}: ${outcome.why}`, answered: false };
    }
    const { link, welcome } = outcome;
    if (this.#stop.signal.aborted) {
      await link.close(1000, "client closed");
      return { why: "closed", answered: true };
    }
    if (welcome.role !== "live") {
      await link.close(1000, "not live");
      this.#ring.next();
      return { why: `${url} is a backup (role ${welcome.role}); live is not known`, answered: true };
    }
    if (welcome.epoch < this.#state.highestEpoch && this.#staleSkips < this.#ring.urls.length) {
      this.#staleSkips++;
      await link.close(1000, "stale epoch");
      this.#ring.next();
      return {
        why:
          `${url} (node ${welcome.node}) is at epoch ${welcome.epoch}, older than epoch ${this.#state.highestEpoch} ` +
          `seen before: it is probably a former live; trying the next`,
        answered: true,
      };
    }
    this.#staleSkips = 0;
    const closed = await this.#serve(url, link, welcome);
    const live = closed.code === 4001 ? liveFromReason(closed.reason) : undefined;
    this.#ring.next(live);
    // A new round starts from a connection that served: its end is the first failure.
    this.#round = { tried: 0, answered: false };
    if (closed.code === 4001) {
      return { why: `${url} is no longer live; live is ${live ?? "not known yet"}`, answered: true };
    }
    return {
      why: `connection lost: ${url} closed (${closed.code}${closed.reason ? ` ${closed.reason}` : ""})`,
      answered: false,
    };
  }

  async #serve(url: string, link: Link, welcome: WelcomeFrame): Promise<LinkClosed> {
    const openedAt = Date.now();
    this.#link = link;
    this.#limits = welcome.limits;
    this.#served = false;
    this.#setState({
      status: "open",
      url,
      node: welcome.node,
      role: welcome.role,
      epoch: welcome.epoch,
      highestEpoch: Math.max(this.#state.highestEpoch, welcome.epoch),
      attempt: this.#backoff.attempt,
    });
    this.#log("info", `connected to ${url} (node ${welcome.node}, epoch ${welcome.epoch})`);
    const principal = welcome.principal;
    if (
      !this.#clientIdGiven && principal && !this.#clientId.startsWith(`${principalNamespace(principal.id)}.`)
    ) {
      // The bridge binds clientIds to the principal (anonymous ones too, where it accepts tokens);
      // this client's own random one goes under its namespace.
      this.#clientId = `${principalNamespace(principal.id)}.${crypto.randomUUID()}`;
    }
    link.send(JSON.stringify({
      op: "hello",
      id: `r${++this.#requestCount}`,
      clientId: this.clientId,
      lastEpoch: this.#state.highestEpoch,
      instance: this.instance,
    }));
    const resent = this.#publisher.pump();
    if (resent > 0) this.#log("info", `resent ${resent} publishes`);
    for (const sub of [...this.#subs.values()]) sub.attach();
    for (const w of this.#readyWaiters.splice(0)) w.resolve();

    const closed = await link.closed;
    this.#link = undefined;
    this.#publisher.linkLost();
    this.#clearTimers();
    for (const sub of [...this.#subs.values()]) sub.detach();
    // A node that did real work is healthy: a later failure starts from the short delays again.
    if (this.#served || Date.now() - openedAt >= this.#backoff.maxMs) this.#backoff.reset();
    return closed;
  }

  #onFrame(f: InboundFrame): void {
    switch (f.op) {
      case "ack":
      case "nack":
        this.#publisher.handle(f);
        return;
      case "subscribed":
      case "message":
      case "committed":
        this.#served = true;
        this.#subs.get(f.sub)?.handle(f);
        return;
      case "skipped":
      case "unsubscribed":
        this.#subs.get(f.sub)?.handle(f);
        return;
      case "error": {
        const sub = f.sub !== undefined ? this.#subs.get(f.sub) : undefined;
        if (sub) return sub.handle(f);
        this.#log("error", `bridge error ${f.code}: ${f.message}`);
        return;
      }
      case "auth_expiring":
        return void this.#refreshToken(f.inMs);
      case "auth_ok":
        return this.#log("info", `token accepted for ${f.principal}`);
      default:
        return; // hello_ok, pong; unknown ops are ignored as the protocol says
    }
  }

  /** The bridge will close the connection when the token expires: send a fresh one if there is a way to get it. */
  async #refreshToken(inMs: number): Promise<void> {
    const link = this.#link;
    if (!this.#token || !link) {
      return this.#log("warn", `the token expires in ${inMs} ms and this client has no way to refresh it`);
    }
    try {
      const token = await this.#token();
      if (this.#link === link) {
        link.send(JSON.stringify({ op: "auth", id: `r${++this.#requestCount}`, token }));
      }
    } catch (e) {
      this.#log("error", `cannot refresh the token: ${(e as Error).message}`);
    }
  }

  #retrySubscribe(sub: Subscription): void {
    const link = this.#link;
    this.#timer(this.#retry.next(), () => {
      if (this.#link === link && this.#subs.get(sub.name) === sub) sub.attach();
    });
  }

  // ---- closing ----

  async #close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    const deadline = Date.now() + timeoutMs;
    if (this.#publisher.pending > 0) {
      this.#log("info", `closing: waiting for ${this.#publisher.pending} unanswered publishes`);
      await this.#until(this.#publisher.drained(), deadline);
    }
    await this.#until(Promise.all([...this.#subs.values()].map((s) => s.close())).then(() => {}), deadline);
    this.#stop.abort();
    await this.#link?.close(1000, "client closed");
    await this.#loop;
    this.#clearTimers();
    this.#publisher.refuseUnanswered();
    for (const sub of [...this.#subs.values()]) sub.shutdown();
    this.#subs.clear();
    for (const w of this.#readyWaiters.splice(0)) {
      w.reject(new ClientClosedError("it closed before a connection opened"));
    }
    this.#log("info", "closed");
    this.#setState({ status: "closed", node: undefined, role: undefined, epoch: undefined });
  }

  /** Waits for `p`, but not past `deadline` (ms since the epoch). */
  async #until(p: Promise<void>, deadline: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, deadline - Date.now()))));
    try {
      await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #sleep(ms: number): Promise<void> {
    const signal = this.#stop.signal;
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done);
    });
  }

  #timer(ms: number, fn: () => void): ReturnType<typeof setTimeout> {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  #clearTimers(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  // ---- events ----

  #setState(patch: Partial<ConnectionState>): void {
    const next = { ...this.#state, ...patch };
    const keys = new Set([...Object.keys(this.#state), ...Object.keys(next)]) as Set<keyof ConnectionState>;
    if ([...keys].every((k) => this.#state[k] === next[k])) return;
    this.#state = next;
    this.dispatchEvent(new CustomEvent("state", { detail: next }));
  }

  #log(level: LogLine["level"], message: string): void {
    this.dispatchEvent(new CustomEvent("log", { detail: { level, message, time: new Date() } }));
  }
}
