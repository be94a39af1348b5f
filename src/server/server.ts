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
import { handleHttp, type ReadinessSource } from "./routes.ts";

const KEEPALIVE_MS = 30_000;

export class BridgeServer {
  readonly #deps: SessionDeps;
  readonly #readiness: ReadinessSource;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, Session>();
  readonly #alive = new WeakSet<WebSocket>();
  #keepalive?: ReturnType<typeof setInterval>;
  #accepting = true;

  constructor(deps: SessionDeps, readiness: ReadinessSource) {
    this.#deps = deps;
    this.#readiness = readiness;
    const { maxFrameBytes } = deps.config.server;
    // Frames up to 4x the limit are read and refused with an error frame; beyond that ws closes with 1009.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes * 4,
      perMessageDeflate: false,
    });
    this.#http = createServer((req, res) => {
      handleHttp(req, res, this.#readiness).catch((e) => {
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

  #accept(ws: WebSocket): void {
    const { metrics, config, log } = this.#deps;
    if (this.#sessions.size >= config.server.maxConnections) {
      metrics.connectionsRejected.inc({ reason: "max_connections" });
      const code = ErrorCode.TOO_MANY_CONNECTIONS;
      ws.send(JSON.stringify({
        op: "error",
        code,
        message: `the bridge is at its limit of ${config.server.maxConnections} connections`,
        retryable: RETRYABLE[code],
      }));
      ws.close(CloseCode.TRY_AGAIN_LATER, "too many connections");
      return;
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
   * Graceful shutdown: stop accepting, let every session answer its in-flight
   * publishes and finish commits by `deadline`, then close sockets with 1001.
   */
  async shutdown(deadline: number): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#keepalive);
    const closedListener = new Promise<void>((r) => this.#http.close(() => r()));
    await Promise.allSettled([...this.#sessions.values()].map((s) => s.drain(deadline)));
    for (const ws of this.#sessions.keys()) ws.close(CloseCode.GOING_AWAY, "bridge shutting down");
    // Give close handshakes a moment, then cut what is left.
    const until = Math.min(deadline, performance.now() + 1000);
    while (this.#sessions.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#sessions.keys()) ws.terminate();
    this.#http.closeAllConnections?.();
    this.#wss.close();
    await closedListener;
  }
}
