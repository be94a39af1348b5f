/** Starts `edge-bridge serve` as a real child process on a free port. */
import { TestClient } from "./ws_client.ts";
import { brokers } from "./kafka.ts";

const root = new URL("../../", import.meta.url).pathname;

/**
 * `deno run` with the permissions the bridge is built with (scripts/compile.sh), on main.ts;
 * `inspect` ("host:port") adds --inspect, for a CPU profile over the DevTools protocol.
 */
export function denoRunArgs(inspect?: string): string[] {
  return [
    "run",
    "--allow-net",
    "--allow-env",
    "--allow-read",
    "--allow-write",
    "--allow-sys=hostname",
    ...(inspect ? [`--inspect=${inspect}`] : []),
    `${root}main.ts`,
  ];
}

export interface BridgeOptions {
  brokers?: string;
  /** `key=value` config settings passed with --set. */
  set?: string[];
  env?: Record<string, string>;
  /** Fixed HTTP/WebSocket port (default: a free one picked by the OS). */
  port?: number;
  /** "host:port": run with --inspect there (scripts/cpu_profile.ts connects to it). */
  inspect?: string;
}

export class BridgeProcess {
  readonly lines: string[] = [];
  #child: Deno.ChildProcess;
  #readers: Promise<void>[];
  #exited?: Promise<Deno.CommandStatus>;
  #listening: Promise<number>;
  port = 0;

  constructor(opts: BridgeOptions = {}) {
    const args = [...denoRunArgs(opts.inspect), "serve", "--port", String(opts.port ?? 0)];
    for (const s of opts.set ?? []) args.push("--set", s);
    this.#child = new Deno.Command(Deno.execPath(), {
      args,
      env: {
        EDGE_BRIDGE_KAFKA_BROKERS: opts.brokers ?? brokers(),
        EDGE_BRIDGE_LOG_LEVEL: "debug",
        ...opts.env,
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let found: (port: number) => void;
    let failed: (e: Error) => void;
    this.#listening = new Promise((res, rej) => ((found = res), (failed = rej)));
    const read = async (stream: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          this.lines.push(line);
          if (line.includes('"msg":"listening"')) found(JSON.parse(line).port);
        }
      }
      if (buf) this.lines.push(buf);
    };
    this.#readers = [read(this.#child.stdout), read(this.#child.stderr)];
    this.#exited = this.#child.status;
    this.#exited.then((s) =>
      failed(new Error(`bridge exited (code ${s.code}) before listening:\n${this.lines.join("\n")}`))
    );
  }

  static async start(opts: BridgeOptions = {}, timeoutMs = 30_000): Promise<BridgeProcess> {
    const b = new BridgeProcess(opts);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`bridge did not log "listening" within ${timeoutMs} ms:\n${b.lines.join("\n")}`)),
        timeoutMs,
      );
    });
    try {
      b.port = await Promise.race([b.#listening, timeout]);
    } catch (e) {
      await b.stop("SIGKILL");
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return b;
  }

  get pid(): number {
    return this.#child.pid;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  connect(): Promise<TestClient> {
    return TestClient.connect(this.url);
  }

  /** Log lines (parsed) whose msg matches. */
  logs(msg: string | RegExp): Record<string, unknown>[] {
    return this.lines.filter((l) => l.startsWith("{")).map((l) => JSON.parse(l)).filter((j) =>
      typeof msg === "string" ? j.msg === msg : msg.test(j.msg ?? "")
    );
  }

  /** Sends a signal without waiting (SIGSTOP, SIGCONT). */
  signal(sig: Deno.Signal): void {
    this.#child.kill(sig);
  }

  /** Sends a signal and waits for exit; returns the exit code. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.#child.kill(signal);
    } catch { /* already gone */ }
    const status = await this.#exited!;
    await Promise.all(this.#readers);
    return status.code;
  }
}
