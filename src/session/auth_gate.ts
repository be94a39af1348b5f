/**
 * A connection's authentication: who it is (its Principal), from a token in the handshake,
 * a first `auth` frame within auth.timeoutMs, or nothing where anonymous access is allowed.
 * It holds frames back until the principal is known, re-authenticates on later `auth`
 * frames, and enforces the credential's expiry: an `auth_expiring` frame first, then a
 * close with AUTH_EXPIRED.
 */
import type { Authenticator } from "../auth/authenticator.ts";
import type { Peer } from "../auth/peer.ts";
import type { AuthOutcome, Principal } from "../auth/principal.ts";
import { type AuthFrame, CloseCode, ErrorCode, parseClientFrame, type ServerFrame } from "../protocol/mod.ts";

export interface AuthGateHost {
  readonly auth: Authenticator;
  /** Where the connection comes from: decides "loopback" anonymous access and whose failures count. */
  readonly peer: Peer;
  readonly timeoutMs: number;
  /** Bytes of frames held while the token is checked (auth.maxPreAuthBytes), at most. */
  readonly maxPreAuthBytes: number;
  readonly expiryWarningMs: number;
  readonly maxCredit: number;
  send(frame: ServerFrame): void;
  /** An `error` frame that does not end the connection. */
  error(code: ErrorCode, message: string, id?: string): void;
  /** An `error` frame, then the socket closes with closeCode. */
  refuse(code: ErrorCode, message: string, closeCode: number): void;
  /** The principal is known: the connection may start (welcome), then hand it the held frames. */
  admitted(principal: Principal, held: HeldFrame[]): void;
  /** Whether the connection has said hello (an anonymous one may authenticate only before). */
  helloDone(): boolean;
  /**
   * An `auth` frame replaced the principal (a refreshed token, or a first one after anonymous):
   * what the connection already does must be checked against its new permissions.
   */
  reauthenticated(principal: Principal): void;
}

/**
 * A frame that came while the token was checked: its text, or for a frame the protocol cannot
 * read (binary, too large) the error that answers it, sent only after `welcome`.
 */
export type HeldFrame = string | (() => void);

/** Frames a client may send before its handshake token is verified; more is a client that does not wait. */
const MAX_HELD_FRAMES = 32;
/** setTimeout's limit; a later expiry is reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class AuthGate {
  #state: "awaiting" | "verifying" | "ready" | "refused" = "awaiting";
  #principal?: Principal;
  #held: HeldFrame[] = [];
  /** UTF-16 code units held: a JavaScript string's size, which is what the bound is about. */
  #heldChars = 0;
  #deadline?: ReturnType<typeof setTimeout>;
  #warnTimer?: ReturnType<typeof setTimeout>;
  #expiryTimer?: ReturnType<typeof setTimeout>;
  #stopped = false;

  constructor(readonly host: AuthGateHost) {}

  get principal(): Principal | undefined {
    return this.#principal;
  }

  get ready(): boolean {
    return this.#state === "ready";
  }

  /** The connection opened, with the token its handshake carried (if any). */
  start(handshakeToken?: string): void {
    if (handshakeToken !== undefined) return void this.#verify(handshakeToken);
    const anonymous = this.host.auth.anonymousFor(this.host.peer);
    if (anonymous) return this.#admit(anonymous);
    this.#deadline = setTimeout(() => {
      if (this.#state !== "awaiting") return;
      this.#refuse(
        ErrorCode.AUTH_TIMEOUT,
        `no "auth" frame within ${this.host.timeoutMs} ms; this bridge needs a token`,
      );
    }, this.host.timeoutMs);
  }

  /** A frame that came before the principal was known. */
  hold(text: string): void {
    this.#hold(text, text.length);
  }

  /**
   * A frame the protocol cannot read (binary, or over server.maxFrameBytes) that came before the
   * principal was known, with the error that answers it. Like any frame but `auth` it is refused
   * while no token is on its way; while one is checked, its error waits for `welcome` (until then
   * the bridge sends nothing).
   */
  holdUnreadable(answer: () => void): void {
    this.#hold(answer, 0);
  }

  #hold(frame: HeldFrame, chars: number): void {
    if (this.#state === "refused") return;
    if (this.#state === "verifying") {
      if (this.#held.length >= MAX_HELD_FRAMES) {
        return this.#refuse(
          ErrorCode.PRE_AUTH_LIMIT,
          `more than ${MAX_HELD_FRAMES} frames before authentication finished; wait for "welcome"`,
        );
      }
      // Frames of up to server.maxFrameBytes each would otherwise let one unauthenticated client
      // hold megabytes while its token is checked.
      if (this.#heldChars + chars > this.host.maxPreAuthBytes) {
        return this.#refuse(
          ErrorCode.PRE_AUTH_LIMIT,
          `more than ${this.host.maxPreAuthBytes} bytes of frames before authentication finished ` +
            `(auth.maxPreAuthBytes); wait for "welcome"`,
        );
      }
      this.#heldChars += chars;
      this.#held.push(frame);
      return;
    }
    // Awaiting: the first frame must be `auth`.
    const parsed = typeof frame === "string"
      ? parseClientFrame(frame, { maxCredit: this.host.maxCredit })
      : undefined;
    if (parsed?.ok && parsed.frame.op === "auth") return void this.#verify(parsed.frame.token);
    this.#refuse(
      ErrorCode.AUTH_REQUIRED,
      'this bridge needs a token: send {"op":"auth","token":"…"} first, or offer it as the ' +
        '"bearer.<token>" WebSocket subprotocol',
    );
  }

  /** An `auth` frame on a connection that is already admitted: a fresh token, or a first one after anonymous. */
  async reauthenticate(f: AuthFrame): Promise<void> {
    const current = this.#principal!;
    if (current.kind === "anonymous" && this.host.helloDone()) {
      return this.host.error(ErrorCode.BAD_FRAME, `"auth" must come before "hello" on this connection`, f.id);
    }
    const outcome = await this.host.auth.authenticate(f.token, this.host.peer).catch((e): AuthOutcome => ({
      ok: false,
      code: ErrorCode.AUTH_UNAVAILABLE,
      message: `cannot check the token now: ${(e as Error).message}`,
    }));
    if (this.#state !== "ready" || this.#stopped) return;
    if (!outcome.ok) {
      // A first token that fails is refused as at the handshake; a failed refresh leaves the
      // connection as it was (its current credential still runs out on time).
      // An address that failed too often is closed either way: it would keep the bridge checking tokens.
      if (current.kind === "anonymous" || outcome.code === ErrorCode.AUTH_RATE_LIMITED) {
        return this.#refuse(outcome.code, outcome.message);
      }
      return this.host.error(outcome.code, outcome.message, f.id);
    }
    const next = outcome.principal;
    if (current.kind !== "anonymous" && next.id !== current.id) {
      return this.host.error(
        ErrorCode.AUTH_CLAIMS,
        `this connection belongs to "${current.id}"; a token for "${next.id}" needs a new connection`,
        f.id,
      );
    }
    this.#principal = next;
    this.#armExpiry(next);
    this.host.send({
      op: "auth_ok",
      id: f.id,
      principal: next.id,
      kind: next.kind === "api-key" ? "api-key" : "jwt",
      expiresAt: next.expiresAt,
    });
    this.host.reauthenticated(next);
  }

  /** The connection ended (or was refused): no timer may fire, no verification may admit it. */
  stop(): void {
    this.#stopped = true;
    if (this.#state !== "ready") this.#state = "refused";
    clearTimeout(this.#deadline);
    clearTimeout(this.#warnTimer);
    clearTimeout(this.#expiryTimer);
    this.#held = [];
    this.#heldChars = 0;
  }

  async #verify(token: string): Promise<void> {
    this.#state = "verifying";
    clearTimeout(this.#deadline);
    let outcome: AuthOutcome;
    try {
      outcome = await this.host.auth.authenticate(token, this.host.peer);
    } catch (e) {
      outcome = {
        ok: false,
        code: ErrorCode.AUTH_UNAVAILABLE,
        message: `cannot check the token now: ${(e as Error).message}`,
      };
    }
    if (this.#state !== "verifying") return; // closed meanwhile
    if (!outcome.ok) return this.#refuse(outcome.code, outcome.message);
    this.#admit(outcome.principal);
  }

  #admit(principal: Principal): void {
    this.#state = "ready";
    this.#principal = principal;
    this.#armExpiry(principal);
    const held = this.#held;
    this.#held = [];
    this.#heldChars = 0;
    this.host.admitted(principal, held);
  }

  #refuse(code: ErrorCode, message: string, closeCode: number = CloseCode.AUTH_FAILED): void {
    this.#state = "refused";
    this.stop();
    this.host.refuse(code, message, closeCode);
  }

  #armExpiry(p: Principal): void {
    clearTimeout(this.#warnTimer);
    clearTimeout(this.#expiryTimer);
    if (p.expiresAt === undefined) return;
    const expiresAt = p.expiresAt;
    const warnAt = expiresAt - this.host.expiryWarningMs;
    if (this.host.expiryWarningMs > 0 && warnAt > Date.now()) {
      at(warnAt, (t) => (this.#warnTimer = t), () => {
        if (this.#state !== "ready") return;
        this.host.send({ op: "auth_expiring", expiresAt, inMs: Math.max(0, expiresAt - Date.now()) });
      });
    }
    at(expiresAt, (t) => (this.#expiryTimer = t), () => {
      if (this.#state !== "ready") return;
      this.#refuse(
        ErrorCode.AUTH_EXPIRED,
        `the token of "${p.id}" expired; reconnect with a fresh one`,
        CloseCode.AUTH_EXPIRED,
      );
    });
  }
}

/** Runs `run` at wall-clock time `when`, in steps when it is further off than one timer can wait. */
function at(when: number, keep: (t: ReturnType<typeof setTimeout>) => void, run: () => void): void {
  const wait = Math.max(0, Math.min(when - Date.now(), MAX_TIMER_MS));
  keep(setTimeout(() => (Date.now() < when ? at(when, keep, run) : run()), wait));
}
