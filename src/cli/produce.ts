/** `edge-bridge produce`: the walkthrough's sample producer, failover-aware. */
import { BridgeConnection } from "../client/connection.ts";
import { parseFlags, UsageError } from "./options.ts";

export const PRODUCE_HELP = `edge-bridge produce: send "hello N" through a bridge, once a second

Usage: edge-bridge produce --url URL [--url URL ...] [options]

Prints each ack with its Kafka position. When the link drops it prints
"Trying again...", moves to the next URL and sends every unacknowledged message
again (at-least-once), so nothing acked is lost and nothing is silently dropped.

Options:
  -u, --url URL          a bridge WebSocket URL; repeat for a live/backup pair
  -t, --topic TOPIC      topic to publish to (default: test)
  -i, --interval-ms MS   time between messages (default: 1000)
  -n, --count N          stop after N messages are acked (default: run until Ctrl-C)
      --client-id ID     client id sent in hello (default: produce-<random>)
  -h, --help             show this help`;

export async function produce(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    url: { type: "string", short: "u", multiple: true },
    topic: { type: "string", short: "t", default: "test" },
    "interval-ms": { type: "string", short: "i", default: "1000" },
    count: { type: "string", short: "n" },
    "client-id": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(PRODUCE_HELP);
    return 0;
  }
  const urls = values.url ?? [];
  if (urls.length === 0) throw new UsageError("--url is required (repeat it for each bridge of a pair)");
  const interval = Number(values["interval-ms"]);
  if (!Number.isInteger(interval) || interval < 1) {
    throw new UsageError(`--interval-ms must be a positive integer, got "${values["interval-ms"]}"`);
  }
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count > 0)) throw new UsageError(`--count must be a positive integer, got "${values.count}"`);
  const topic = values.topic!;

  const pending = new Map<string, string>(); // id -> text, in send order
  let acked = 0;
  let n = 0;
  let done: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const send = (id: string) => conn.send({ op: "publish", id, topic, value: pending.get(id)! });

  const conn: BridgeConnection = new BridgeConnection(
    urls,
    values["client-id"] ?? `produce-${crypto.randomUUID().slice(0, 8)}`,
    {
      onOpen: (w, url) => {
        console.log(`connected to ${url} (node ${w.node}, epoch ${w.epoch})`);
        for (const id of pending.keys()) {
          console.log(`resending ${pending.get(id)}`);
          send(id);
        }
      },
      onDrop: (reason) => {
        console.log(`Trying again... (${reason})`);
        void conn.connect();
      },
      onFrame: (f) => {
        if (f.op === "ack" && pending.has(f.id)) {
          console.log(
            `acked ${
              pending.get(f.id)
            } -> ${f.topic} partition ${f.partition} offset ${f.offset} (epoch ${f.epoch})`,
          );
          pending.delete(f.id);
          if (++acked >= count) done();
        } else if (f.op === "nack" && pending.has(f.id)) {
          console.log(
            `nacked ${pending.get(f.id)}: ${f.code} ${f.message}${f.retryable ? " (will retry)" : ""}`,
          );
          if (!f.retryable) pending.delete(f.id);
        } else if (f.op === "error") {
          console.log(`error ${f.code}: ${f.message}`);
        }
      },
    },
  );

  const stop = () => done();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await conn.connect();
  const timer = setInterval(() => {
    if (n >= count) return;
    const id = String(++n);
    pending.set(id, `hello ${n}`);
    if (send(id)) console.log(`sent hello ${n}`);
  }, interval);
  // Retryable nacks are resent on the next tick of this slower timer.
  const retry = setInterval(() => {
    if (!conn.open) return;
    for (const id of pending.keys()) if (Number(id) < n) send(id);
  }, Math.max(interval * 3, 2000));
  await finished;
  clearInterval(timer);
  clearInterval(retry);
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  conn.close();
  console.log(`${acked} acked, ${pending.size} unacknowledged`);
  return pending.size === 0 || count === Infinity ? 0 : 1;
}
