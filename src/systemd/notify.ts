/**
 * systemd's notify protocol (sd_notify(3)) without libsystemd: newline-separated
 * KEY=VALUE datagrams to the unix socket named by NOTIFY_SOCKET. With Type=notify the
 * unit is "started" at READY=1, shows STATUS= in `systemctl status`, and with
 * WatchdogSec= is restarted when WATCHDOG=1 stops coming.
 *
 * Needs Deno's unstable net API (unix datagram sockets): deno.json enables "net".
 */

export interface NotifyTarget {
  send(message: string): Promise<void>;
  close(): void;
}

/**
 * A datagram socket of our own that sends to NOTIFY_SOCKET, bound to an abstract address (a
 * NUL-prefixed name): no file anywhere. Deno reads "@name" as a file name, and made one in the
 * working directory at every start; the empty path (kernel autobind) is refused without -A.
 * An abstract NOTIFY_SOCKET ("@name", as sd_notify(3) writes it) is "\0name" to the kernel.
 */
class UnixDatagramTarget implements NotifyTarget {
  readonly #socket: Deno.DatagramConn;
  readonly #to: string;
  constructor(readonly path: string) {
    this.#to = path.startsWith("@") ? `\0${path.slice(1)}` : path;
    this.#socket = Deno.listenDatagram({
      transport: "unixpacket",
      path: `\0edge-bridge-notify-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`,
    });
  }
  async send(message: string): Promise<void> {
    await this.#socket.send(new TextEncoder().encode(message), { transport: "unixpacket", path: this.#to });
  }
  close(): void {
    this.#socket.close();
  }
}

export interface NotifierOptions {
  /** What to do with a failed send: the service runs on, but the operator should know. */
  onError?(message: string, error: Error): void;
}

export class SystemdNotifier {
  #readySent = false;
  /** Deno's datagram socket takes one send at a time: messages queue here, in order. */
  #sending: Promise<void> = Promise.resolve();
  #watchdog?: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(
    readonly target: NotifyTarget,
    readonly watchdogUsec: number | undefined,
    readonly opts: NotifierOptions = {},
  ) {}

  /**
   * From the environment systemd sets: undefined when NOTIFY_SOCKET is unset (not under
   * systemd, or not Type=notify). WATCHDOG_USEC counts only when WATCHDOG_PID is unset or ours.
   */
  static fromEnv(
    env: (name: string) => string | undefined,
    opts: NotifierOptions = {},
  ): SystemdNotifier | undefined {
    const socket = env("NOTIFY_SOCKET");
    if (!socket) return undefined;
    if (/^vsock(-stream|-dgram|-seqpacket)?:/.test(socket)) {
      // Set by a VM's supervisor for the guest's own systemd, not for a service's Type=notify:
      // Deno cannot reach it, and the service runs without.
      opts.onError?.(
        `NOTIFY_SOCKET is a vsock address (${socket}), which this build cannot reach: no readiness or watchdog notifications`,
        new Error("AF_VSOCK is not supported"),
      );
      return undefined;
    }
    if (!socket.startsWith("/") && !socket.startsWith("@")) {
      throw new Error(
        `NOTIFY_SOCKET must be an absolute path or an abstract address (@...), got "${socket}"`,
      );
    }
    const pid = env("WATCHDOG_PID");
    const usec = Number(env("WATCHDOG_USEC"));
    const watchdog = Number.isSafeInteger(usec) && usec > 0 && (!pid || Number(pid) === Deno.pid)
      ? usec
      : undefined;
    return new SystemdNotifier(new UnixDatagramTarget(socket), watchdog, opts);
  }

  /** READY=1 (once) with the status line: the service serves. */
  ready(status: string): void {
    if (this.#readySent) return this.status(status);
    this.#readySent = true;
    this.#send(`READY=1\nSTATUS=${oneLine(status)}`);
  }

  status(status: string): void {
    this.#send(`STATUS=${oneLine(status)}`);
  }

  /** STOPPING=1: the drain has begun. */
  stopping(status: string): void {
    this.stopWatchdog();
    this.#send(`STOPPING=1\nSTATUS=${oneLine(status)}`);
  }

  /** WATCHDOG=1 at half the interval systemd expects, from the event loop (a hung loop stops it). */
  startWatchdog(): void {
    if (this.watchdogUsec === undefined || this.#watchdog !== undefined) return;
    const every = Math.max(1, Math.floor(this.watchdogUsec / 2000));
    this.#send("WATCHDOG=1");
    this.#watchdog = setInterval(() => this.#send("WATCHDOG=1"), every);
  }

  stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  /** Sends what is queued, then closes the socket. */
  async close(): Promise<void> {
    this.stopWatchdog();
    if (this.#closed) return;
    await this.#sending;
    this.#closed = true;
    this.target.close();
  }

  #send(message: string): void {
    if (this.#closed) return;
    this.#sending = this.#sending.then(() =>
      this.#closed
        ? undefined
        : this.target.send(message).catch((e) => this.opts.onError?.(message, e as Error))
    );
  }
}

/** STATUS= is one line; a newline would start another assignment. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, " ");
}
