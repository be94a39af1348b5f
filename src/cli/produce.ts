/** `edge-bridge produce`: the walkthrough's sample producer, on the client SDK (failover, exactly-once). */
import { EdgeBridgeClient, type PublishAck } from "../client/mod.ts";
import { onStopSignals, printConnection } from "./client_lines.ts";
import { label, LONGEST_LABEL, numberedValue } from "./numbered.ts";
import {
  bridgeUrls,
  DEFAULT_BRIDGE_URL,
  parseFlags,
  positiveIntegerFlag,
  positiveNumberFlag,
  UsageError,
} from "./options.ts";

export const PRODUCE_HELP =
  `edge-bridge produce: send numbered messages ("hello 1", "hello 2", ...) through a bridge

Usage: edge-bridge produce [--url URL ...] [options]

Sends at a steady rate (default: one a second) and prints each ack with its Kafka
position: "acked hello N -> TOPIC/PARTITION@OFFSET (epoch E)". When the link
drops it prints "Trying again...", moves to the next URL and resends every
unanswered message with its sequence number, so the bridge writes each message
to Kafka once (exactly-once): nothing acked is lost and nothing is written twice.

At the end (--count reached, or Ctrl-C / SIGTERM) it prints:
  sent N, acked N, duplicates N, failed N
  sent        messages handed to the client
  acked       messages the bridge acked (Kafka has them)
  duplicates  of those, acks the bridge marked duplicate: a resend of a message it
              had already written, answered with the first write's position
  failed      messages refused for good (e.g. RECORD_TOO_LARGE), or unanswered
              when the producer stopped (after Ctrl-C it waits up to 10 s for answers)
Exit code: 0 only when every message sent was acked; 1 otherwise; 2 for bad flags.

Options:
  -u, --url URL          a bridge WebSocket URL; repeat for a live/backup pair
                         (default: ${DEFAULT_BRIDGE_URL})
  -t, --topic TOPIC      topic to publish to (default: test)
  -r, --rate N           messages per second, evenly spaced (default: 1; fractions
                         such as 0.5 are allowed)
  -i, --interval-ms MS   time between messages, instead of --rate (--rate 1000/MS)
  -n, --count N          stop after N messages, once each is answered
                         (default: run until Ctrl-C)
  -s, --size BYTES       pad each value to BYTES bytes: "hello N" then a space and
                         dots, so it still starts with its number (consume counts
                         duplicates and gaps from it). At least the length of the
                         largest "hello N" (default: no padding)
      --client-id ID     client id sent in hello (default: produce-<random UUID>).
                         The bridge remembers a client's sequence numbers for a
                         while: reusing an id across runs makes it take the new
                         run's messages for resends of the old run's
  -h, --help             show this help`;

/** How long Ctrl-C waits for unanswered messages before counting them failed. */
const STOP_TIMEOUT_MS = 10_000;
/** Bytes of a publish frame besides its value (op, id, topic, seq, acked...), generously. */
const FRAME_OVERHEAD = 1024;
/** The outbox never holds more than this many bytes of frames. */
const OUTBOX_BYTES = 64 * 1024 * 1024;

export async function produce(args: string[]): Promise<number> {
  const { values } = parseFlags(args, {
    url: { type: "string", short: "u", multiple: true },
    topic: { type: "string", short: "t", default: "test" },
    rate: { type: "string", short: "r" },
    "interval-ms": { type: "string", short: "i" },
    count: { type: "string", short: "n" },
    size: { type: "string", short: "s" },
    "client-id": { type: "string" },
    help: { type: "boolean", short: "h" },
  });
  if (values.help) {
    console.log(PRODUCE_HELP);
    return 0;
  }
  const urls = bridgeUrls(values.url);
  const topic = values.topic!;
  if (topic === "") throw new UsageError("--topic must not be empty");
  if (values.rate !== undefined && values["interval-ms"] !== undefined) {
    throw new UsageError("give --rate or --interval-ms, not both");
  }
  const interval = positiveNumberFlag("interval-ms", values["interval-ms"]);
  const rate = positiveNumberFlag("rate", values.rate) ?? (interval ? 1000 / interval : 1);
  const count = positiveIntegerFlag("count", values.count) ?? Infinity;
  const size = positiveIntegerFlag("size", values.size);
  const longest = count === Infinity ? LONGEST_LABEL : label(count).length;
  if (size !== undefined && size < longest) {
    throw new UsageError(
      count === Infinity
        ? `--size must be at least ${longest} bytes without --count (the longest "hello N"), got ${size}`
        : `--size must be at least ${longest} bytes to hold "${label(count)}", got ${size}`,
    );
  }
  const clientId = values["client-id"] ?? `produce-${crypto.randomUUID()}`;
  if (clientId === "" || clientId.length > 200) {
    throw new UsageError(`--client-id must be 1 to 200 characters, got ${clientId.length}`);
  }

  // Messages waiting for an answer are capped so a long outage cannot fill memory; while the
  // cap is reached, sending pauses (and does not burst afterwards).
  const frameBytes = (size ?? longest) + FRAME_OVERHEAD;
  const window = Math.max(1, Math.min(10_000, Math.floor(OUTBOX_BYTES / frameBytes)));
  const client = new EdgeBridgeClient({
    urls,
    clientId,
    outbox: { maxMessages: window, maxBytes: window * frameBytes },
  });
  printConnection(client);

  const stopped = new AbortController();
  const removeSignals = onStopSignals(() => stopped.abort());
  const tally = { sent: 0, acked: 0, duplicates: 0, failed: 0 };
  const unanswered = new Set<Promise<void>>();
  let wake: (() => void) | undefined;

  const publish = (n: number) => {
    tally.sent++;
    const answered = client.publish(topic, numberedValue(n, size)).then(
      (ack: PublishAck) => {
        tally.acked++;
        if (ack.duplicate) tally.duplicates++;
        console.log(
          `acked ${label(n)} -> ${ack.topic}/${ack.partition}@${ack.offset} (epoch ${ack.epoch}${
            ack.duplicate ? ", duplicate" : ""
          })`,
        );
      },
      (e: Error) => {
        tally.failed++;
        console.log(`failed ${label(n)}: ${e.message}`);
      },
    ).finally(() => {
      unanswered.delete(answered);
      wake?.();
    });
    unanswered.add(answered);
  };

  /** Resolves after `ms`, on an answer (when `onAnswer`), or on a stop signal, whichever is first. */
  const pause = (ms: number, onAnswer = false) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        stopped.signal.removeEventListener("abort", done);
        if (wake === done) wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      stopped.signal.addEventListener("abort", done);
      if (onAnswer) wake = done;
    });

  // Message k is due at start + k / rate; a loop turn sends what is due, then sleeps.
  const gapMs = 1000 / rate;
  let due = performance.now();
  let n = 0;
  while (n < count && !stopped.signal.aborted) {
    if (unanswered.size >= window) {
      await pause(1000, true);
      continue;
    }
    const now = performance.now();
    // Far behind (sending was paused): start the schedule again rather than burst.
    if (now - due > 1000) due = now;
    // At most a batch per turn, so acks are handled between batches at high rates.
    for (let batch = 0; batch < 1000 && due <= now && n < count && unanswered.size < window; batch++) {
      publish(++n);
      due += gapMs;
    }
    await pause(Math.max(0, due - performance.now()));
  }

  // Every message sent: wait for the answers (resends included) unless told to stop.
  while (unanswered.size > 0 && !stopped.signal.aborted) await pause(1000, true);
  // The client says how many it waits for; what is still unanswered after the timeout is rejected: failed.
  await client.close({ timeoutMs: STOP_TIMEOUT_MS });
  await Promise.all(unanswered);
  removeSignals();
  console.log(
    `sent ${tally.sent}, acked ${tally.acked}, duplicates ${tally.duplicates}, failed ${tally.failed}`,
  );
  return tally.failed === 0 && tally.acked === tally.sent ? 0 : 1;
}
