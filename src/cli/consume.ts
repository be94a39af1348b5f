/** `edge-bridge consume`: the walkthrough's sample consumer, on the client SDK (failover, resume). */
import { EdgeBridgeClient, type Message, SubscriptionError } from "../client/mod.ts";
import { onStopSignals, printConnection } from "./client_lines.ts";
import { LatestCommits } from "./commits.ts";
import { ConsumeTally } from "./numbered.ts";
import { bridgeUrls, DEFAULT_BRIDGE_URL, parseFlags, positiveIntegerFlag, UsageError } from "./options.ts";

/** Values longer than this are printed shortened. */
const MAX_PRINTED = 200;
/** How long closing waits for the last commits to be confirmed. */
const CLOSE_TIMEOUT_MS = 5_000;

export const CONSUME_HELP = `edge-bridge consume: print each message of a topic with its position

Usage: edge-bridge consume [--url URL ...] [options]

Prints "TOPIC/PARTITION@OFFSET VALUE" for each message (a value longer than
${MAX_PRINTED} characters is shortened, with its size). In a group (default group:
edge-bridge-consume) each message is committed once printed (one commit in flight
per partition; the next covers every message printed meanwhile), so after a
failover the group resumes where it left off. With --broadcast the consumer keeps
its own position and resumes from it. When the link drops it prints
"Trying again..." and resumes without printing a message twice.

At the end (--count reached, or Ctrl-C / SIGTERM) it prints:
  received N, duplicates N, gaps N
  received    messages printed
  duplicates  messages whose partition and offset, or whose message number, was
              seen before in this run (each counted once)
  gaps        message numbers never seen between the lowest and the highest seen
Message numbers are read from values that start with "hello N", as
'edge-bridge produce' sends them; other values count only by position. The
numbers are meaningful when one produce run is the topic's only writer; a
count stopped mid-stream may show as gaps messages still in flight.
Exit code: 0; 1 when the bridge refuses or ends the subscription; 2 for bad flags.

Options:
  -u, --url URL        a bridge WebSocket URL; repeat for a live/backup pair
                       (default: ${DEFAULT_BRIDGE_URL})
  -t, --topic TOPIC    topic to read (default: test)
  -g, --group NAME     consumer group (default: edge-bridge-consume)
      --broadcast      read every message, outside any group
  -f, --from POS       earliest or latest, where nothing is committed (default: latest)
  -n, --count N        exit after N messages (default: run until Ctrl-C)
  -h, --help           show this help`;

function printable(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  if (text.length <= MAX_PRINTED) return text;
  return `${text.slice(0, 40)}... (${new TextEncoder().encode(text).length} bytes)`;
}

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
  const urls = bridgeUrls(values.url);
  if (values.from !== "earliest" && values.from !== "latest") {
    throw new UsageError(`--from must be earliest or latest, got "${values.from}"`);
  }
  const count = positiveIntegerFlag("count", values.count) ?? Infinity;
  const topic = values.topic!;
  if (topic === "") throw new UsageError("--topic must not be empty");
  if (values.group === "") throw new UsageError("--group must not be empty");
  const mode = values.broadcast ? "broadcast" : "group";

  const client = new EdgeBridgeClient({ urls, clientId: `consume-${crypto.randomUUID()}` });
  printConnection(client);
  const sub = client.subscribe(topic, {
    mode,
    group: mode === "group" ? values.group : undefined,
    from: values.from,
  });
  sub.ready().then(
    () => console.log(`subscribed to ${topic} (${mode}${mode === "group" ? ` ${values.group}` : ""})`),
    () => {}, // a refusal ends the loop below with the reason
  );

  const tally = new ConsumeTally();
  const commits = new LatestCommits<Message>(
    (m) => sub.commit(m),
    (m, e) => console.log(`commit of ${m.topic}/${m.partition}@${m.offset} not confirmed: ${e.message}`),
  );
  // Stopping lets the last commits through, then closes, which ends the iteration below.
  // Messages that arrive meanwhile are neither printed nor committed: the group redelivers them.
  let stopping: Promise<void> | undefined;
  const close = () =>
    stopping ??= (async () => {
      const deadline = Date.now() + CLOSE_TIMEOUT_MS;
      await commits.settled(CLOSE_TIMEOUT_MS);
      await client.close({ timeoutMs: Math.max(0, deadline - Date.now()) });
    })();
  const removeSignals = onStopSignals(() => void close());
  let code = 0;
  try {
    for await (const m of sub) {
      if (stopping) continue;
      console.log(`${m.topic}/${m.partition}@${m.offset} ${printable(m.value)}`);
      tally.add(m.partition, m.offset, m.value);
      if (mode === "group") commits.add(m);
      if (tally.received >= count) void close();
    }
  } catch (e) {
    if (!(e instanceof SubscriptionError)) throw e;
    code = 1; // the client's log (printed above) already says why
  }
  await close();
  removeSignals();
  console.log(tally.summary());
  return code;
}
