/**
 * What `produce` and `consume` print about their connection, from the SDK's "state" and
 * "log" events: "connected to URL (node X, epoch N)", "Trying again... (why)" when a
 * connection that served drops, and the SDK's warnings (a backup refusing, a retry) as they come.
 */
import type { ConnectionState, EdgeBridgeClient, LogLine } from "../client/mod.ts";

/** Info lines the state events already say better (printed as "connected to ..."), or that add nothing. */
const QUIET_INFO = /^(connecting to |connected to |closed$)/;

export function printConnection(client: EdgeBridgeClient, print: (line: string) => void = console.log): void {
  let previous: ConnectionState["status"] = client.state.status;
  // A warning logged while the connection is open may be why it dropped: the SDK logs the
  // reason just before it moves to "connecting", so it is held until that is known.
  let held: string | undefined;

  client.addEventListener("state", (e) => {
    const s = e.detail;
    if (s.status === "open" && previous !== "open") {
      print(`connected to ${s.url} (node ${s.node}, epoch ${s.epoch})`);
    } else if (s.status === "connecting" && previous === "open") {
      print(`Trying again... (${held ?? "connection lost"})`);
      held = undefined;
    }
    previous = s.status;
  });

  client.addEventListener("log", (e) => {
    const { level, message } = e.detail as LogLine;
    if (level === "info") {
      if (!QUIET_INFO.test(message)) print(message);
      return;
    }
    if (client.state.status !== "open") return print(message);
    held = message;
    queueMicrotask(() => {
      // Still open: it was not about the connection (e.g. a publish refused for now).
      if (held === message) {
        held = undefined;
        print(message);
      }
    });
  });
}

/** Calls `stop` on Ctrl-C or SIGTERM (instead of exiting at once); returns the unregister function. */
export function onStopSignals(stop: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  return () => {
    for (const s of signals) Deno.removeSignalListener(s, stop);
  };
}
