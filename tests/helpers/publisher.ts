/**
 * Publishes numbered messages to whichever node of a pair is live, moving to the
 * other node when refused or dropped and resending what was not acked, like a
 * client that keeps every ack's promise. Records every answer for the checks.
 */
import assert from "node:assert/strict";
import { kcatRead, type RecordAt, recordsByPosition } from "./kcat.ts";
import { TestClient } from "./ws_client.ts";

export class FailoverPublisher {
  readonly acked = new Map<string, { partition: number; offset: string; epoch: number }>();
  readonly nacks: { id: string; code: string }[] = [];
  readonly pending = new Set<string>();
  #client?: TestClient;
  #running = true;
  #loop?: Promise<void>;
  #n = 0;

  constructor(readonly urls: string[], readonly topic: string, readonly intervalMs = 20) {}

  start(): void {
    this.#loop = this.#run();
  }

  async #connect(): Promise<TestClient | undefined> {
    for (const url of this.urls) {
      try {
        const c = await TestClient.connect(url);
        if (c.welcome) return c;
        await c.close();
      } catch { /* try the next */ }
    }
    return undefined;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#client ??= await this.#connect();
      const c = this.#client;
      if (!c) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      // Resend what is still unanswered after a failover, then one new message.
      const ids = [...this.pending];
      if (ids.length === 0 || ids.length < 3) ids.push(`m${++this.#n}`);
      for (const id of ids) {
        this.pending.add(id);
        c.send({ op: "publish", id, topic: this.topic, value: id });
      }
      const replies = await Promise.all(
        ids.map((id) =>
          c.waitFor((f) => f.id === id && (f.op === "ack" || f.op === "nack"), 5000).catch(() => undefined)
        ),
      );
      for (const [i, f] of replies.entries()) {
        if (!f) continue;
        c.frames.splice(c.frames.indexOf(f), 1);
        if (f.op === "ack") {
          this.acked.set(ids[i], { partition: f.partition, offset: f.offset, epoch: f.epoch });
          this.pending.delete(ids[i]);
        } else this.nacks.push({ id: ids[i], code: f.code });
      }
      if (replies.some((f) => !f || f.op === "nack") || c.ws.readyState !== WebSocket.OPEN) {
        await c.close();
        this.#client = undefined;
      }
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }

  /** Stops, after one last attempt to get every pending message acked. */
  async stop(): Promise<void> {
    const until = performance.now() + 15_000;
    while (this.pending.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 50));
    this.#running = false;
    await this.#loop;
    await this.#client?.close();
  }
}

/**
 * Every acked message is in Kafka (read by kcat) at the position its ack named.
 * Returns the lookup by position, for further checks on the acked records.
 */
export async function assertAckedInKafka(
  topic: string,
  pub: FailoverPublisher,
  brokers?: string,
): Promise<RecordAt> {
  const records = await kcatRead(topic, brokers);
  const recordAt = recordsByPosition(records);
  for (const [id, a] of pub.acked) {
    assert.equal(recordAt(a.partition, a.offset)?.payload, id, `acked ${id} is in Kafka where its ack said`);
  }
  const codes = [...new Set(pub.nacks.map((n) => n.code))].join(", ") || "none";
  console.log(
    `kcat: ${records.length} records in Kafka, ${pub.acked.size} acked, ${pub.nacks.length} nacks (${codes})`,
  );
  return recordAt;
}
