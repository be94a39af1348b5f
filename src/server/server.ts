/**
 * The HTTP + WebSocket front door (npm:ws on node:http). It adapts each socket to
 * a Session, enforces connection and frame limits, and serves the HTTP routes.
 * Whether this node may serve at all is decided outside (HA gates the server).
 */
import type { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer, type Server as TlsServer } from "node:https";
import type { Duplex } from "node:stream";
// @ts-types="npm:@types/ws@8.18.1"
import { type WebSocket, WebSocketServer } from "ws";
import { CloseCode, ErrorCode, RETRYABLE } from "../protocol/mod.ts";
import { Session, type SessionDeps } from "../session/session.ts";
import { ConsoleAssets } from "../console/assets.ts";
import { handleHttp, type ReadinessSource } from "./routes.ts";
import { SUBPROTOCOL, tokenFromProtocols } from "../protocol/handshake.ts";
import { OriginPolicy } from "../origin/origin_policy.ts";
import type { CertificateMaterial } from "../tls/certificate_files.ts";
import { liveCloseReason, safeCloseReason } from "../protocol/close_reason.ts";
import { type Peer, peerOf } from "../auth/peer.ts";
import { addressBlock } from "../limits/address.ts";
import { ConnectionsPerIp } from "../limits/connections_per_ip.ts";
import { TokenBucket } from "../limits/rate.ts";
import { SendGuard } from "../limits/send_guard.ts";
import { settlesWithin } from "../util/deadline.ts";

const KEEPALIVE_MS = 30_000;

/** Whether this node may serve clients now; HA supplies it, a standalone node always may. */
export interface ServeGate {
  isLive(): boolean;
  /** The live node's URL when this node is not it, for the refusal hint. */
  liveUrl(): string | undefined;
}

const ALWAYS_LIVE: ServeGate = { isLive: () => true, liveUrl: () => undefined };

/** TLS and the Origin check (see src/tls/, src/origin/). */
export interface EdgeSecurity {
  /** Serve wss:// and https:// with this certificate; replace it later with reloadCertificate. */
  certificate?: CertificateMaterial;
  /** Host names the bridge is reached by on purpose, for recognising its own pages (OriginPolicy). */
  knownHosts?: string[];
}

export class BridgeServer {
  /** Sessions' subscriptions still stopping (an HA step-down does not wait for them). */
  readonly #leaving = new Set<Promise<void>>();
  readonly #deps: SessionDeps;
  readonly #readiness: ReadinessSource;
  readonly #http: Server;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Map<WebSocket, Session>();
  readonly #alive = new WeakSet<WebSocket>();
  #keepalive?: ReturnType<typeof setInterval>;
  #accepting = true;

  readonly #gate: ServeGate;
  readonly #origins: OriginPolicy;
  readonly #perIp: ConnectionsPerIp;

  constructor(
    deps: SessionDeps,
    readiness: ReadinessSource,
    gate: ServeGate = ALWAYS_LIVE,
    security: EdgeSecurity = {},
  ) {
    this.#deps = deps;
    this.#gate = gate;
    this.#origins = new OriginPolicy(
      deps.config.server.allowedOrigins,
      security.certificate !== undefined,
      security.knownHosts,
    );
    this.#readiness = readiness;
    const { limits } = deps.config;
    this.#perIp = new ConnectionsPerIp(limits.maxConnectionsPerIp, limits.countLoopback);
    const { maxFrameBytes } = deps.config.server;
    // Frames up to 4x the limit are read and refused with an error frame; beyond that ws closes with 1009.
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: maxFrameBytes * 4,
      perMessageDeflate: false,
      // A client that offers a token ("bearer.<token>") offers this too; the token is never echoed.
      handleProtocols: (offered: Set<string>) => offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false,
    });
    const assets = new ConsoleAssets(deps.config.server.path);
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      handleHttp(req, res, this.#readiness, assets).catch((e) => {
        deps.log.error({ err: e }, "http handler failed");
        if (!res.headersSent) res.writeHead(500).end();
      });
    };
    const cert = security.certificate;
    this.#http = cert
      ? createTlsServer({ cert: cert.cert, key: cert.key }, onRequest)
      : createServer(onRequest);
    this.#http.on("upgrade", (req, socket, head) => this.#upgrade(req.url ?? "/", req, socket, head));
  }

  /** Whether this server speaks TLS (wss://, https://). */
  get secure(): boolean {
    return this.#origins.secure;
  }

  /**
   * Serves new connections with this certificate; open ones keep the session they negotiated.
   * Only for a server started with a certificate.
   */
  reloadCertificate(material: CertificateMaterial): void {
    if (!this.secure) throw new Error("this server was started without TLS");
    (this.#http as TlsServer).setSecureContext({ cert: material.cert, key: material.key });
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
    const origin = this.#origins.check(req.headers.origin, req.headers.host);
    if (!origin.allowed) {
      // Refused after the upgrade, so that the page can read why; it gets nothing else.
      this.#deps.metrics.connectionsRejected.inc({ reason: "origin" });
      this.#deps.log.info({ origin: req.headers.origin, remote: req.socket.remoteAddress }, "origin refused");
      this.#wss.handleUpgrade(req, socket, head, (ws) =>
        this.#refuse(
          ws,
          ErrorCode.ORIGIN_NOT_ALLOWED,
          `${origin.why}: this bridge does not serve pages from there`,
          CloseCode.ORIGIN_NOT_ALLOWED,
          "origin not allowed",
        ));
      return;
    }
    const token = tokenFromProtocols(req.headers["sec-websocket-protocol"]);
    const peer = peerOf(req.socket.remoteAddress, req.headers);
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(ws, token, peer));
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
    ws.close(closeCode, safeCloseReason(closeReason));
  }

  #accept(ws: WebSocket, token: string | undefined, peer: Peer): void {
    const { metrics, config, log } = this.#deps;
    const ip = peer.address;
    if (!this.#gate.isLive()) {
      metrics.connectionsRejected.inc({ reason: "not_live" });
      const live = this.#gate.liveUrl();
      const where = live ? `; the live is ${live}` : "; the live is not known yet";
      return this.#refuse(
        ws,
        ErrorCode.NOT_LIVE,
        `this node is a backup${where}`,
        CloseCode.NOT_LIVE,
        liveCloseReason(live),
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
    if (!this.#perIp.acquire(ip)) {
      metrics.connectionsRejected.inc({ reason: "per_ip" });
      log.info(
        { remote: ip, limit: config.limits.maxConnectionsPerIp },
        "connection refused: too many from its address",
      );
      return this.#refuse(
        ws,
        ErrorCode.TOO_MANY_CONNECTIONS_PER_IP,
        `${addressBlock(ip)} has ${config.limits.maxConnectionsPerIp} connections open, the limit per ` +
          `address (IPv6: per /64; limits.maxConnectionsPerIp)`,
        CloseCode.TRY_AGAIN_LATER,
        "too many connections from this address",
      );
    }
    // The guard is made first (the session sends through it); its log line names the session later.
    const named: { session?: Session } = {};
    const guard = new SendGuard(ws, config.limits.maxSendBufferBytes, (buffered) => {
      metrics.sendBufferCloses.inc();
      log.info(
        { session: named.session?.id, remote: ip, buffered, limit: config.limits.maxSendBufferBytes },
        "closing a client that does not read: its send buffer passed limits.maxSendBufferBytes",
      );
    });
    const session = named.session = new Session(
      {
        send: (text) => guard.send(text),
        bufferedAmount: () => ws.bufferedAmount,
        close: (code, reason) => ws.close(code, safeCloseReason(reason)),
      },
      this.#deps,
      token,
      peer,
    );
    // limits.bytesPerSecond: over it, stop reading the socket until back within the rate (TCP pushes back).
    const inbound = new TokenBucket(config.limits.bytesPerSecond);
    let resumeTimer: ReturnType<typeof setTimeout> | undefined;
    this.#sessions.set(ws, session);
    this.#alive.add(ws);
    metrics.connections.inc();
    log.debug({ session: session.id }, "client connected");
    ws.on("pong", () => this.#alive.add(ws));
    ws.on("message", (data: Uint8Array, isBinary: boolean) => {
      const wait = inbound.takeOrWait(data.length);
      if (wait > 0 && resumeTimer === undefined) {
        metrics.throttled.inc();
        ws.pause();
        resumeTimer = setTimeout(() => {
          resumeTimer = undefined;
          ws.resume();
        }, wait);
      }
      if (data.length > config.server.maxFrameBytes) return session.rejectOversized(data.length);
      if (isBinary) return session.rejectBinary();
      session.handleText(new TextDecoder().decode(data));
    });
    ws.on("error", (e: Error) => log.debug({ session: session.id, err: e.message }, "socket error"));
    ws.on("close", (code: number) => {
      this.#perIp.release(ip);
      guard.closed();
      clearTimeout(resumeTimer);
      this.#sessions.delete(ws);
      metrics.connections.dec();
      log.debug({ session: session.id, code }, "client disconnected");
      this.#trackStops(session.closed());
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
    leaveGroups: "await" | "background" = "await",
  ): Promise<void> {
    const start = performance.now();
    const sessions = [...this.#sessions.values()];
    const drains = sessions.map((s) => s.drain(deadline, refusal, leaveGroups));
    // Tracked from the start: a step-down past its deadline moves on to shutdown before these end.
    for (const d of drains) this.#trackStops(d.then((t) => t.stopped));
    const drained = await Promise.allSettled(drains);
    // The slowest session per step: what a step-down that took seconds waited for.
    const slowest = { publishesMs: 0, commitsMs: 0, subscriptionsMs: 0 };
    for (const d of drained) {
      if (d.status !== "fulfilled") continue;
      for (const k of Object.keys(slowest) as (keyof typeof slowest)[]) {
        slowest[k] = Math.max(slowest[k], Math.round(d.value[k]));
      }
    }
    if (sessions.length > 0) {
      this.#deps.log.info(
        { sessions: sessions.length, tookMs: Math.round(performance.now() - start), slowest },
        "sessions drained",
      );
    }
    for (const ws of this.#sessions.keys()) ws.close(code, safeCloseReason(reason));
    // Give close handshakes a moment, then cut what is left.
    const until = Math.min(deadline, performance.now() + 1000);
    while (this.#sessions.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.#sessions.keys()) ws.terminate();
  }

  /**
   * Cuts every connection at once (HA, past the step-down deadline): sessions end, and their
   * subscriptions' consumers leave Kafka in the background. Says what it cut, for the log.
   */
  terminateSessions(): string[] {
    const n = this.#sessions.size;
    for (const ws of this.#sessions.keys()) ws.terminate();
    return n > 0 ? [`${n} client connections (and their consumers)`] : [];
  }

  /** Subscriptions stopping (their consumers leaving their groups), for shutdown to wait for. */
  #trackStops(stopping: Promise<void>): void {
    const settled = stopping.catch(() => {});
    this.#leaving.add(settled);
    void settled.finally(() => this.#leaving.delete(settled));
  }

  /** Graceful shutdown: stop accepting, close sessions with 1001, stop listening. */
  async shutdown(deadline: number): Promise<void> {
    this.#accepting = false;
    clearInterval(this.#keepalive);
    const closedListener = new Promise<void>((r) => this.#http.close(() => r()));
    await this.closeSessions(deadline, CloseCode.GOING_AWAY, "bridge shutting down");
    // Group consumers an HA step-down left to stop in the background: leave the groups before exit.
    await settlesWithin(Promise.allSettled([...this.#leaving]), deadline - performance.now());
    this.#http.closeAllConnections?.();
    this.#wss.close();
    await closedListener;
  }
}
