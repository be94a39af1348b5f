/** `edge-bridge serve`: run the bridge until SIGTERM or SIGINT. */
import { runBridge } from "../app.ts";
import { createLogger } from "../observability/logger.ts";
import { CONFIG_HELP, CONFIG_OPTIONS, configFromFlags, nodeId, parseFlags } from "./options.ts";

export const SERVE_HELP = `edge-bridge serve: run the WebSocket <-> Kafka bridge

Usage: edge-bridge serve [options]

Listens for WebSocket clients (default ws://127.0.0.1:8080/ws), publishes their
messages to Kafka (default 127.0.0.1:19092) and streams topics back. Serves
/healthz, /readyz and /metrics on the same port. SIGTERM or SIGINT shuts down
gracefully within server.shutdownTimeoutMs, then exits 0.

${CONFIG_HELP}

Examples:
  edge-bridge serve
  edge-bridge serve --config /etc/edge-bridge/config.yaml
  EDGE_BRIDGE_KAFKA_BROKERS=k1:9092,k2:9092 edge-bridge serve --port 9000`;

export async function serve(args: string[]): Promise<number> {
  const { values } = parseFlags(args, CONFIG_OPTIONS);
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  const config = await configFromFlags(values);
  const node = nodeId(config);
  const log = createLogger(config.log.level, node);
  const stop = new AbortController();
  const onSignal = (sig: Deno.Signal) => () => {
    if (stop.signal.aborted) {
      log.warn({ signal: sig }, "second signal: exiting now");
      Deno.exit(1);
    }
    log.info({ signal: sig }, "signal received");
    stop.abort();
  };
  const handlers = (["SIGTERM", "SIGINT"] as const).map((sig) => {
    const h = onSignal(sig);
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });
  try {
    await runBridge(config, node, log, stop.signal);
  } finally {
    for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
  }
  return 0;
}
