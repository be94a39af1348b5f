/**
 * One WebSocket to one bridge: opens it, waits for `welcome`, then hands every frame to
 * its owner until it closes. A node that refuses (a backup, or a full bridge) sends an
 * `error` and closes before any welcome; that comes back as a refusal with the live's URL
 * when the node named it.
 */
import type { ServerFrame, WelcomeFrame } from "../protocol/frames.ts";
import { liveFromReason } from "./urls.ts";
import { protocolsFor } from "../protocol/handshake.ts";

/** A token to present, and how: an `auth` frame first (default), or the handshake's subprotocols. */
export interface LinkAuth {
  token: string;
  via: "frame" | "protocol";
}

/** A frame from the bridge; unknown fields are allowed (the protocol ignores them). */
// deno-lint-ignore no-explicit-any
export type InboundFrame = ServerFrame & Record<string, any>;

export interface LinkClosed {
  code: number;
  reason: string;
}

export type LinkOutcome =
  | { ok: true; link: Link; welcome: WelcomeFrame }
  | { ok: false; why: string; live?: string; code?: number };

export interface LinkHandlers {
  onFrame(frame: InboundFrame): void;
  onClose(closed: LinkClosed): void;
  /** A frame that is not JSON: the bridge never sends one, so it is reported, not acted on. */
  onGarbage(text: string): void;
}

export class Link {
  readonly #ws: WebSocket;
  readonly #closed: Promise<LinkClosed>;

  constructor(ws: WebSocket, closed: Promise<LinkClosed>, readonly url: string) {
    this.#ws = ws;
    this.#closed = closed;
  }

  get open(): boolean {
    return this.#ws.readyState === 1; // OPEN; the constant is not on every injected implementation
  }

  /** Sends one frame; false when the socket is no longer open (the owner resends after reconnecting). */
  send(text: string): boolean {
    if (!this.open) return false;
    this.#ws.send(text);
    return true;
  }

  /** Resolves when the socket has closed, however that happened. */
  get closed(): Promise<LinkClosed> {
    return this.#closed;
  }

  close(code = 1000, reason = ""): Promise<LinkClosed> {
    try {
      this.#ws.close(code, reason);
    } catch {
      this.#ws.close();
    }
    return this.#closed;
  }
}

/**
 * Opens a link to `url`. Settles with the link once `welcome` arrives, or with why not
 * (refused, unreachable, no welcome within `timeoutMs`, or `signal` aborted).
 */
export function openLink(
  url: string,
  WS: typeof WebSocket,
  timeoutMs: number,
  signal: AbortSignal,
  handlers: LinkHandlers,
  auth?: LinkAuth,
): Promise<LinkOutcome> {
  return new Promise((settle) => {
    let ws: WebSocket;
    try {
      ws = auth?.via === "protocol" ? new WS(url, protocolsFor(auth.token)) : new WS(url);
    } catch (e) {
      return settle({ ok: false, why: `cannot open ${url}: ${(e as Error).message}` });
    }
    let link: Link | undefined;
    let refusal: { message?: string; live?: string } = {};
    /** A welcome that came before our `auth` frame was answered (the bridge admits anonymous first). */
    let early: WelcomeFrame | undefined;
    const admit = (welcome: WelcomeFrame) => {
      done();
      link = new Link(ws, closed, url);
      settle({ ok: true, link, welcome });
    };
    let giveUp: string | undefined;
    let markClosed!: (c: LinkClosed) => void;
    const closed = new Promise<LinkClosed>((r) => (markClosed = r));

    const stop = (why: string) => {
      giveUp ??= why;
      ws.close();
    };
    const timer = setTimeout(() => stop(`no welcome from ${url} within ${timeoutMs} ms`), timeoutMs);
    const onAbort = () => stop("the client was closed");
    signal.addEventListener("abort", onAbort);
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    };

    ws.onmessage = (e: MessageEvent) => {
      if (typeof e.data !== "string") return handlers.onGarbage("(a binary frame)");
      let frame: InboundFrame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        return handlers.onGarbage(e.data);
      }
      if (frame === null || typeof frame !== "object") return handlers.onGarbage(e.data);
      if (link) return handlers.onFrame(frame);
      if (giveUp) return;
      if (frame.op === "welcome") {
        const welcome = frame as WelcomeFrame;
        // Sent before our auth frame was read: wait for its answer, so a bad token is a refusal.
        if (auth?.via === "frame" && welcome.principal?.kind === "anonymous") early = welcome;
        else admit(welcome);
      } else if (frame.op === "auth_ok" && early) {
        admit({ ...early, principal: { id: frame.principal, kind: frame.kind, expiresAt: frame.expiresAt } });
      } else if (frame.op === "error") {
        // The refusal (NOT_LIVE, TOO_MANY_CONNECTIONS); the close follows.
        refusal = { message: `${frame.code}: ${frame.message}`, live: frame.live };
      }
    };
    if (auth?.via === "frame") {
      ws.onopen = () => ws.send(JSON.stringify({ op: "auth", id: "auth", token: auth.token }));
    }
    ws.onerror = () => {}; // the close event that follows says what is needed
    ws.onclose = (e: CloseEvent) => {
      const c = { code: e.code, reason: e.reason ?? "" };
      markClosed(c);
      if (link) return handlers.onClose(c);
      done();
      const live = liveFromReason(c.reason) ?? refusal.live;
      const why = giveUp ?? refusal.message ??
        `connection to ${url} closed before welcome (${c.code}${c.reason ? ` ${c.reason}` : ""})`;
      settle({ ok: false, why, live, code: c.code });
    };
  });
}
