/**
 * The HTTP + WebSocket front door (npm:ws on node:http). It adapts each socket to
 * a Session, enforces connection and frame limits, and serves the HTTP routes.
 * Whether this node may serve at all is decided outside (HA gates the server).
 */
import type { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { Duplex } from "node:stream";
// @ts-types="npm:@types/ws@8.18.1"
import { type WebSocket, WebSocketServer } from "ws";
import { CloseCode, ErrorCode, RETRYABLE } from "../protocol/mod.ts";
import { Session, type SessionDeps } from "../session/session.ts";
import { ConsoleAssets } from "../console/assets.ts";
import { handleHttp, type ReadinessSource } from "./routes.ts";

const KEEPALIVE_MS = 30_000;

/** Whether this node may serve clients now; HA supplies it, a standalone node always may. */
export interface ServeGate {
  isLive(): boolean;
  /** The live node's URL when this node is not it, for the refusal hint. */
  liveUrl(): string | undefined;
}

const ALWAYS_LIVE: ServeGate = { isLive: () => true, liveUrl: () => undefined };

export class BridgeServer {
  readonly #deps: SessionDeps;
  readonly #readiness: ReadinessSource;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, Session>();
  readonly #alive = new WeakSet<WebSocket>();
  #keepalive?: ReturnType<typeof setInterval>;
  #accepting = true;

  readonly #gate: ServeGate;

  constructor(deps: SessionDeps, readiness: ReadinessSource, gate: ServeGate = ALWAYS_LIVE) {
    this.#deps = deps;
    this.#gate = gate;
    this.#readiness = readiness;
    const { maxFrameBytes } = deps.config.server;
    // Frames up to 4x the limit are read and refused with an error frame; beyond that ws closes with 1009.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes * 4,
      perMessageDeflate: false,
    });
    const assets = new ConsoleAssets(deps.config.server.path);
    this.#http = createServer((req, res) => {
      handleHttp(req, res, this.#readiness, assets).catch((e) => {
        deps.log.error({ err: e }, "http handler failed");
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
    this.#http.on("upgrade", (req, socket, head) => this.#upgrade(req.url ?? "/", req, socket, head));
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Publishes received and not yet answered, over all sessions. */
  get inflightPublishes(): number {
    let n = 0;
    for (const s of this.#sessions.values()) n += s.inflight;
    return n;
  }

  listen(): Promise<{ host: string; port: number }> {
    const { host, port } = this.#deps.config.server;
    return new Promise((resolve, reject) => {
      this.#http.once("error", reject);
      this.#http.listen(port, host, () => {
        this.#http.off("error", reject);
        const addr = this.#http.address();
        this.#keepalive = setInterval(() => this.#ping(), KEEPALIVE_MS);
        resolve({ host, port: typeof addr === "object" && addr ? addr.port : port });
      });
    });
  }

  #upgrade(url: string, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = url.split("?")[0];
    if (path !== this.#deps.config.server.path || !this.#accepting) {
      const status = this.#accepting ? "404 Not Found" : "503 Service Unavailable";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws));
  }

  #refuse(
    ws: WebSocket,
    code: ErrorCode,
    message: string,
    closeCode: number,
    closeReason: string,
    extra = {},
  ): void {
    ws.send(JSON.stringify({ op: "error", code, message, retryable: RETRYABLE[code], ...extra }));
    ws.close(closeCode, closeReason.slice(0, 120));
  }

  #accept(ws: WebSocket): void {
    const { metrics, config, log } = this.#deps;
    if (!this.#gate.isLive()) {
      metrics.connectionsRejected.inc({ reason: "not_live" });
      const live = this.#gate.liveUrl();
      const where = live ? `; the live is ${live}` : "; the live is not known yet";
      return this.#refuse(
        ws,
        ErrorCode.NOT_LIVE,
        `this node is a backup${where}`,
        CloseCode.NOT_LIVE,
        live ? `live=${live}` : "not live",
        { live },
      );
    }
    if (this.#sessions.size >= config.server.maxConnections) {
      metrics.connectionsRejected.inc({ reason: "max_connections" });
      return this.#refuse(
        ws,
        ErrorCode.TOO_MANY_CONNECTIONS,
        `the bridge is at its limit of ${config.server.maxConnections} connections`,
        CloseCode.TRY_AGAIN_LATER,
        "too many connections",
      );
    }
    const session = new Session({
      send: (text) => ws.readyState === ws.OPEN && ws.send(text),
      bufferedAmount: () => ws.bufferedAmount,
      close: (code, reason) => ws.close(code, reason),
    }, this.#deps);
    this.#sessions.set(ws, session);
    this.#alive.add(ws);
    metrics.connections.inc();
    log.debug({ session: session.id }, "client connected");
    ws.on("pong", () => this.#alive.add(ws));
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      if (data.length > config.server.maxFrameBytes) return session.rejectOversized(data.length);
      if (isBinary) return session.rejectBinary();
      session.handleText(new TextDecoder().decode(data));
    });
    ws.on("error", (e: Error) => log.debug({ session: session.id, err: e.message }, "socket error"));
    ws.on("close", (code: number) => {
      this.#sessions.delete(ws);
      metrics.connections.dec();
      log.debug({ session: session.id, code }, "client disconnected");
      void session.closed();
    });
    session.start();
  }

  #ping(): void {
    for (const ws of this.#sessions.keys()) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  /**
   * Ends every session gracefully: each answers its in-flight publishes and
   * finishes commits by `deadline`, then its socket closes with the given code.
   * Used by shutdown, and by HA when this node stops being live.
   */
  async closeSessions(
    deadline: number,
    code: number,
    reason: string,
    refusal?: { code: ErrorCode; message: string },
  ): Promise<void> {
    await Promise.allSettled([...this.#sessions.values()].map((s) => s.drain(deadline, refusal)));
    for (const ws of this.#sessions.keys()) ws.close(code, reason.slice(0, 120));
    // Give close handshakes a moment, then cut what is left.
    const until = Math.min(deadline, performance.now() + 1000);
    while (this.#sessions.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#sessions.keys()) ws.terminate();
  }

  /** Graceful shutdown: stop accepting, close sessions with 1001, stop listening. */
  async shutdown(deadline: number): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#keepalive);
    const closedListener = new Promise<void>((r) => this.#http.close(() => r()));
    await this.closeSessions(deadline, CloseCode.GOING_AWAY, "bridge shutting down");
    this.#http.closeAllConnections?.();
    this.#wss.close();
    await closedListener;
  }
}
