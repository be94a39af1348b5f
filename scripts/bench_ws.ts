/**
 * The WebSocket transport on its own: npm:ws on node:http (what the bridge uses)
 * against Deno's built-in upgrade (Deno.serve + Deno.upgradeWebSocket). Each
 * server runs in a child process and answers every publish-shaped JSON frame
 * with an ack-shaped one, so only the transport differs; the same clients drive
 * both, with a window of frames in flight. Rounds are interleaved and the median
 * is reported as a ratio, because shared machines are noisy. No Kafka is needed.
 *
 *   deno task bench:ws [--frames N] [--clients C] [--window W] [--size BYTES] [--rounds R] [--idle N]
 *   deno run -A scripts/bench_ws.ts --serve ws|deno --port P     (the child; used by the above)
 */
import { createServer } from "node:http";
import { parseArgs } from "node:util";
// @ts-types="npm:@types/ws@8.18.1"
import { WebSocketServer } from "ws";
import { freePort } from "../tests/helpers/ha.ts";
import { median, percentile } from "./stats.ts";
import { cpuSeconds, rssBytes } from "./proc_stats.ts";

const { values: opts } = parseArgs({
  options: {
    frames: { type: "string", default: "50000" },
    clients: { type: "string", default: "4" },
    window: { type: "string", default: "256" },
    size: { type: "string", default: "100" },
    rounds: { type: "string", default: "5" },
    idle: { type: "string", default: "500" },
    serve: { type: "string" },
    port: { type: "string", default: "0" },
    help: { type: "boolean", short: "h" },
  },
});
if (opts.help) {
  console.log(
    "Usage: deno task bench:ws [--frames N] [--clients C] [--window W] [--size BYTES] [--rounds R] [--idle N]\n" +
      "Compares npm:ws on node:http with Deno.upgradeWebSocket: round trips of JSON frames per second,\n" +
      "server CPU per frame and server memory per idle connection.",
  );
  Deno.exit(0);
}

/** What a server does per frame, the same in both: parse, answer with an ack. */
function answer(text: string): string {
  const f = JSON.parse(text);
  return JSON.stringify({ op: "ack", id: f.id, topic: f.topic, partition: 0, offset: "0", epoch: 0 });
}

type Transport = "ws" | "deno";

function serveWs(port: number): void {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on("message", (data, isBinary) => {
        if (!isBinary) ws.send(answer(data.toString()));
      });
    });
  });
  http.listen(port, "127.0.0.1", () => console.log("ready"));
}

function serveDeno(port: number): void {
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => console.log("ready") }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => {
      if (typeof e.data === "string") socket.send(answer(e.data));
    };
    return response;
  });
}

if (opts.serve) {
  const port = Number(opts.port);
  if (opts.serve === "ws") serveWs(port);
  else if (opts.serve === "deno") serveDeno(port);
  else throw new Error(`--serve: expected ws or deno, got ${JSON.stringify(opts.serve)}`);
} else {
  await main();
}

interface Server {
  url: string;
  /** CPU seconds (user + system) the server process has used so far. */
  cpuSeconds(): number;
  /** Resident memory of the server process, in bytes. */
  rssBytes(): number;
  stop(): Promise<void>;
}

async function startServer(transport: Transport): Promise<Server> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", import.meta.filename!, "--serve", transport, "--port", String(port)],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  if (!value?.includes("ready")) throw new Error(`${transport} server did not start`);
  reader.releaseLock();
  return {
    url: `ws://127.0.0.1:${port}/ws`,
    cpuSeconds: () => cpuSeconds(child.pid),
    rssBytes: () => rssBytes(child.pid),
    stop: async () => {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

function openSockets(url: string, count: number): Promise<WebSocket[]> {
  return Promise.all(Array.from({ length: count }, () =>
    new Promise<WebSocket>((ok, fail) => {
      const ws = new WebSocket(url);
      ws.onopen = () => ok(ws);
      ws.onerror = () => fail(new Error(`cannot connect to ${url}`));
    })));
}

async function closeSockets(sockets: WebSocket[]): Promise<void> {
  await Promise.all(sockets.map((ws) =>
    new Promise<void>((closed) => {
      ws.onclose = () => closed();
      ws.close();
    })
  ));
}

async function drive(url: string, frames: number, clients: number, window: number, size: number) {
  const value = "x".repeat(size);
  const per = Math.ceil(frames / clients);
  const latencies: number[] = [];
  const sockets = await openSockets(url, clients);
  const t0 = performance.now();
  await Promise.all(sockets.map((ws, ci) =>
    new Promise<void>((done) => {
      let sent = 0, answered = 0;
      const sentAt: number[] = [];
      const pump = () => {
        while (sent < per && sent - answered < window) {
          sentAt[sent] = performance.now();
          ws.send(JSON.stringify({ op: "publish", id: `${ci}-${sent}`, topic: "bench", value }));
          sent++;
        }
      };
      ws.onmessage = (e) => {
        const id = JSON.parse(e.data as string).id as string;
        latencies.push(performance.now() - sentAt[Number(id.slice(id.indexOf("-") + 1))]);
        if (++answered === per) done();
        else pump();
      };
      pump();
    })
  ));
  const ms = performance.now() - t0;
  await closeSockets(sockets);
  return { frames: per * clients, rate: (per * clients) / (ms / 1000), latencies };
}

/** Opens `count` idle connections and returns the server's resident memory growth per connection. */
async function idleBytesPerConnection(server: Server, count: number): Promise<number> {
  const before = server.rssBytes();
  const sockets = await openSockets(server.url, count);
  await new Promise((r) => setTimeout(r, 500));
  const after = server.rssBytes();
  await closeSockets(sockets);
  return (after - before) / count;
}

interface Sample {
  rates: number[];
  cpuMicrosPerFrame: number[];
  bytesPerConnection: number[];
  latencies: number[];
}

async function main(): Promise<void> {
  const frames = Number(opts.frames), clients = Number(opts.clients), idle = Number(opts.idle);
  const window = Number(opts.window), size = Number(opts.size), rounds = Number(opts.rounds);
  const empty = (): Sample => ({ rates: [], cpuMicrosPerFrame: [], bytesPerConnection: [], latencies: [] });
  const results: Record<Transport, Sample> = { ws: empty(), deno: empty() };
  console.error(
    `bench:ws: ${rounds} rounds of ${frames} frames, ${clients} clients, window ${window}, ${idle} idle connections`,
  );
  for (let r = 1; r <= rounds; r++) {
    // Alternate which goes first, so neither always gets the warmer machine.
    const order: Transport[] = r % 2 ? ["ws", "deno"] : ["deno", "ws"];
    for (const t of order) {
      const server = await startServer(t);
      try {
        await drive(server.url, Math.min(2000, frames), clients, window, size); // warm-up
        const cpu0 = server.cpuSeconds();
        const { frames: sent, rate, latencies } = await drive(server.url, frames, clients, window, size);
        const cpuMicros = ((server.cpuSeconds() - cpu0) * 1e6) / sent;
        const perConnection = await idleBytesPerConnection(server, idle);
        const sample = results[t];
        sample.rates.push(rate);
        sample.cpuMicrosPerFrame.push(cpuMicros);
        sample.bytesPerConnection.push(perConnection);
        sample.latencies.push(...latencies);
        console.error(
          `  round ${r}/${rounds} ${t.padEnd(4)} ${rate.toFixed(0)} round trips/s, server ${
            cpuMicros.toFixed(1)
          } µs CPU per frame, ${(perConnection / 1024).toFixed(1)} KiB per idle connection`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  const base = results.ws;
  console.log(
    `\n| transport | round trips/s | vs npm:ws | server CPU µs/frame | vs npm:ws | KiB per idle connection | p50 ms | p99 ms |`,
  );
  console.log(`|---|---|---|---|---|---|---|---|`);
  for (const [name, t] of [["npm:ws on node:http", "ws"], ["Deno.upgradeWebSocket", "deno"]] as const) {
    const x = results[t];
    const rate = median(x.rates), cpu = median(x.cpuMicrosPerFrame);
    console.log(
      `| ${name} | ${rate.toFixed(0)} | ${(rate / median(base.rates)).toFixed(2)} | ${cpu.toFixed(1)} | ${
        (cpu / median(base.cpuMicrosPerFrame)).toFixed(2)
      } | ${(median(x.bytesPerConnection) / 1024).toFixed(1)} | ${
        percentile(x.latencies, 0.5).toFixed(1)
      } | ${percentile(x.latencies, 0.99).toFixed(1)} |`,
    );
  }
}
