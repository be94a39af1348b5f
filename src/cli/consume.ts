/** `edge-bridge consume`: the walkthrough's sample consumer, failover-aware. */
import { BridgeConnection } from "../client/connection.ts";
import { parseFlags, UsageError } from "./options.ts";

export const CONSUME_HELP = `edge-bridge consume: print each message of a topic with its position

Usage: edge-bridge consume --url URL [--url URL ...] [options]

In a group (default group: edge-bridge-consume) each message is committed once
printed, so after a failover the group resumes where it left off. With
--broadcast the consumer keeps its own position and resumes from it.

Options:
  -u, --url URL        a bridge WebSocket URL; repeat for a live/backup pair
  -t, --topic TOPIC    topic to read (default: test)
  -g, --group NAME     consumer group (default: edge-bridge-consume)
      --broadcast      read every message, outside any group
  -f, --from POS       earliest or latest, where nothing is committed (default: latest)
  -n, --count N        exit after N messages
  -h, --help           show this help`;

const CREDIT = 100;

export async function consume(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    url: { type: "string", short: "u", multiple: true },
    topic: { type: "string", short: "t", default: "test" },
    group: { type: "string", short: "g", default: "edge-bridge-consume" },
    broadcast: { type: "boolean" },
    from: { type: "string", short: "f", default: "latest" },
    count: { type: "string", short: "n" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(CONSUME_HELP);
    return 0;
  }
  const urls = values.url ?? [];
  if (urls.length === 0) throw new UsageError("--url is required (repeat it for each bridge of a pair)");
  if (values.from !== "earliest" && values.from !== "latest") {
    throw new UsageError(`--from must be earliest or latest, got "${values.from}"`);
  }
  const count = values.count === undefined ? Infinity : Number(values.count);
  if (!(count > 0)) throw new UsageError(`--count must be a positive integer, got "${values.count}"`);
  const topic = values.topic!;
  const mode = values.broadcast ? "broadcast" : "group";
  const next: Record<string, string> = {}; // partition -> next offset (broadcast resume)
  let seen = 0, sinceGrant = 0, subs = 0;
  let done: () => void;
  const finished = new Promise<void>((r) => (done = r));

  const subscribe = () => {
    const sub = `s${++subs}`;
    // A broadcast consumer resumes from its own positions; a group from its committed offsets.
    const from = mode === "broadcast" && Object.keys(next).length ? { offsets: { ...next } } : values.from;
    conn.send({
      op: "subscribe",
      id: sub,
      sub,
      topic,
      mode,
      group: mode === "group" ? values.group : undefined,
      from,
      credit: CREDIT,
    });
  };
  const conn: BridgeConnection = new BridgeConnection(urls, `consume-${crypto.randomUUID().slice(0, 8)}`, {
    onOpen: (w, url) => {
      console.log(`connected to ${url} (node ${w.node}, epoch ${w.epoch})`);
      sinceGrant = 0;
      subscribe();
    },
    onDrop: (reason) => {
      console.log(`Trying again... (${reason})`);
      void conn.connect();
    },
    onFrame: (f) => {
      if (f.op === "subscribed") {
        console.log(`subscribed to ${f.topic} (${f.mode}${f.group ? ` ${f.group}` : ""})`);
      } else if (f.op === "error") console.log(`error ${f.code}: ${f.message}`);
      if (f.op !== "message") return;
      console.log(
        `${f.topic}/${f.partition}@${f.offset} ${
          typeof f.value === "string" ? f.value : JSON.stringify(f.value)
        }`,
      );
      next[String(f.partition)] = (BigInt(f.offset) + 1n).toString();
      if (mode === "group") {
        conn.send({
          op: "commit",
          id: `c${f.partition}-${f.offset}`,
          sub: f.sub,
          partition: f.partition,
          offset: f.offset,
        });
      }
      if (++sinceGrant >= CREDIT / 2) {
        conn.send({ op: "credit", sub: f.sub, n: sinceGrant });
        sinceGrant = 0;
      }
      if (++seen >= count) done();
    },
  });
  const stop = () => done();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  await conn.connect();
  await finished;
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGTERM", stop);
  // Let the last commit reach the bridge before closing.
  await new Promise((r) => setTimeout(r, 200));
  conn.close();
  return 0;
}
