/** Reads a topic with kcat (librdkafka): an independent check of what Kafka holds. */
import { brokers } from "./kafka.ts";

export interface KcatRecord {
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers: Record<string, string>;
}

/**
 * Every record of the topic. kcat right after a burst of writes can stop before it has read every
 * partition: with `atLeast` (what the test saw acked), it reads again until it has that many.
 */
export async function kcatRead(topic: string, brokerList = brokers(), atLeast = 0): Promise<KcatRecord[]> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const records = await kcatReadOnce(topic, brokerList);
    if (records.length >= atLeast || performance.now() > deadline) return records;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function kcatReadOnce(topic: string, brokerList: string): Promise<KcatRecord[]> {
  const out = await new Deno.Command("kcat", {
    args: ["-C", "-b", brokerList, "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`kcat failed: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout).split("\n").filter((l) => l.trim()).map((l) => {
    const j = JSON.parse(l);
    const headers: Record<string, string> = {};
    const h: string[] = j.headers ?? [];
    for (let i = 0; i + 1 < h.length; i += 2) headers[h[i]] = h[i + 1];
    return { partition: j.partition, offset: j.offset, key: j.key, payload: j.payload, headers };
  });
}

/** Looks a record up by the partition and offset an ack names (acks carry the offset as a string). */
export type RecordAt = (partition: number, offset: string | number) => KcatRecord | undefined;

/** Indexes records by position, so each ack can be checked against the record it names. */
export function recordsByPosition(records: KcatRecord[]): RecordAt {
  const index = new Map(records.map((r) => [`${r.partition}/${r.offset}`, r]));
  return (partition, offset) => index.get(`${partition}/${offset}`);
}

/** Produces keyless text records with kcat, so tests have data that did not come through the bridge. */
export async function kcatProduce(
  topic: string,
  values: string[],
  opts: { partition?: number } = {},
): Promise<void> {
  const args = ["-P", "-b", brokers(), "-t", topic];
  if (opts.partition !== undefined) args.push("-p", String(opts.partition));
  const child = new Deno.Command("kcat", { args, stdin: "piped", stdout: "null", stderr: "piped" }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(values.join("\n") + "\n"));
  await w.close();
  const out = await child.output();
  if (!out.success) throw new Error(`kcat produce failed: ${new TextDecoder().decode(out.stderr)}`);
}
