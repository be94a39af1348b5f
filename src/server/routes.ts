/** Plain HTTP endpoints: /healthz, /readyz, /metrics, and the console's files (src/console/assets.ts). */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ConsoleAssets } from "../console/assets.ts";

export interface ReadinessSource {
  ready(): { ready: boolean; detail: Record<string, unknown> };
  metrics(): Promise<string>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

export async function handleHttp(
  req: IncomingMessage,
  res: ServerResponse,
  src: ReadinessSource,
  assets?: ConsoleAssets,
): Promise<void> {
  const path = (req.url ?? "/").split("?")[0];
  if (req.method !== "GET" && req.method !== "HEAD") return json(res, 405, { error: "method not allowed" });
  const asset = assets?.respond(path, req.headers["if-none-match"]);
  if (asset) {
    res.writeHead(asset.status, asset.headers).end(req.method === "HEAD" ? undefined : asset.body);
    return;
  }
  switch (path) {
    case "/healthz":
      return json(res, 200, { status: "ok" });
    case "/readyz": {
      const r = src.ready();
      return json(res, r.ready ? 200 : 503, { ready: r.ready, ...r.detail });
    }
    case "/metrics": {
      const text = await src.metrics();
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text);
      return;
    }
    default:
      return json(res, 404, {
        error: `no route ${path}; try / (the console), /healthz, /readyz, /metrics or a WebSocket upgrade`,
      });
  }
}
