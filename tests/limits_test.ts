/**
 * Abuse limits against a real bridge and broker: each refusal by its code, reads slowed rather than
 * refused over the byte rate, consumers counted per connection and per bridge with their lag series
 * pruned, and a client that never reads closed (4009) with the bridge's memory bounded.
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce, kcatRead } from "./helpers/kcat.ts";
import { TestClient } from "./helpers/ws_client.ts";

async function metrics(bridge: BridgeProcess): Promise<string> {
  return await (await fetch(`${bridge.httpUrl}/metrics`)).text();
}

async function metric(bridge: BridgeProcess, series: string): Promise<number> {
  const line = (await metrics(bridge)).split("\n").find((l) => l.startsWith(series + " "));
  return line ? Number(line.split(" ").pop()) : 0;
}

async function until(
  what: string,
  cond: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

Deno.test("limits: connections per IP address are bounded (TOO_MANY_CONNECTIONS_PER_IP, 1013)", async () => {
  const bridge = await BridgeProcess.start({
    set: ["limits.maxConnectionsPerIp=2", "limits.countLoopback=true"],
  });
  const [a, b] = [await bridge.connect(), await bridge.connect()];
  const extra = await TestClient.connect(bridge.url);
  try {
    const err = extra.frames[0];
    assert.deepEqual([err.op, err.code, err.retryable], ["error", "TOO_MANY_CONNECTIONS_PER_IP", true]);
    assert.equal((await extra.closed).code, 1013);
    await a.close();
    await until("a slot freed", async () => (await metric(bridge, "edge_bridge_connections")) === 1);
    const again = await bridge.connect();
    assert.equal(again.welcome?.op, "welcome");
    await again.close();
  } finally {
    await Promise.all([a.close(), b.close(), extra.close()]);
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("limits: publishes over the rate are nacked RATE_LIMITED and not written; over the byte rate reads slow down", async () => {
  const topic = uniqueTopic("rate");
  await createTopics([{ name: topic, partitions: 1 }]);
  const bridge = await BridgeProcess.start({
    set: ["limits.publishesPerSecond=5", "limits.bytesPerSecond=65536", "server.maxInflightPublishes=1000"],
  });
  const c = await bridge.connect();
  try {
    for (let i = 0; i < 20; i++) c.send({ op: "publish", id: `p${i}`, topic, value: `v${i}` });
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => c.waitFor((f) => f.id === `p${i}`)),
    );
    const acked = answers.filter((f) => f.op === "ack");
    const limited = answers.filter((f) => f.op === "nack");
    assert.ok(acked.length >= 5 && limited.length > 0, `${acked.length} acked, ${limited.length} nacked`);
    for (const n of limited) assert.deepEqual([n.code, n.retryable], ["RATE_LIMITED", true]);
    const inKafka = await kcatRead(topic, undefined, acked.length);
    assert.deepEqual(
      inKafka.map((r) => r.payload).sort(),
      acked.map((f) => answers.indexOf(f)).map((i) => `v${i}`).sort(),
      "exactly the acked publishes are in Kafka",
    );

    // 256 KiB at 64 KiB/s: the bridge pauses reading instead of refusing; every frame is answered.
    await new Promise((r) => setTimeout(r, 1100)); // the publish bucket refills
    const big = "x".repeat(32 * 1024);
    for (let i = 0; i < 8; i++) c.send({ op: "ping", id: `big${i}-${big}` });
    const pongs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => c.waitFor((f) => f.op === "pong" && f.id.startsWith(`big${i}-`))),
    );
    assert.equal(pongs.length, 8);
    assert.ok((await metric(bridge, "edge_bridge_throttled_total")) > 0, "reads were paused");
    assert.equal((await c.publish(topic, "after")).op, "ack", "the connection still works");
  } finally {
    await c.close();
    assert.equal(await bridge.stop(), 0);
  }
});

Deno.test("limits: Kafka consumers per connection and per bridge; lag series bounded and pruned", async () => {
  const topic = uniqueTopic("consumers");
  await createTopics([{ name: topic, partitions: 1 }]);
  await kcatProduce(topic, ["a", "b", "c"]);
  const bridge = await BridgeProcess.start({
    set: [
      "limits.maxConsumersPerConnection=2",
      "limits.maxConsumers=3",
      "limits.maxLagSeries=1",
      "kafka.consumer.sessionTimeoutMs=6000",
    ],
  });
  const [c1, c2] = [await bridge.connect(), await bridge.connect()];
  const group = (n: number) => `${topic}-g${n}`;
  const sub = (c: TestClient, n: number) =>
    c.request({
      op: "subscribe",
      id: c.nextId(`s${n}-`),
      sub: `s${n}`,
      topic,
      mode: "group",
      group: group(n),
      from: "earliest",
      credit: 1,
    }, 30_000);
  const subscribed = async (c: TestClient, n: number) => {
    const reply = await sub(c, n);
    assert.equal(reply.op, "subscribed", JSON.stringify(reply));
  };
  try {
    await subscribed(c1, 1);
    await subscribed(c1, 2);
    const perConnection = await sub(c1, 3);
    assert.deepEqual([perConnection.code, perConnection.retryable], ["TOO_MANY_CONSUMERS", false]);
    // Hub subscribers share one reader: not counted.
    assert.equal((await c1.subscribe(topic, { mode: "broadcast", from: "earliest" })).op, "subscribed");
    await subscribed(c2, 4);
    const perBridge = await sub(c2, 5);
    assert.deepEqual([perBridge.code, perBridge.retryable], ["BRIDGE_CONSUMERS_FULL", true]);

    // One lag series at most; the others' updates are counted as dropped.
    await c1.waitForCount((f) => f.op === "message" && f.sub === "s1", 1);
    await c2.waitForCount((f) => f.op === "message" && f.sub === "s4", 1);
    await until("lag series", async () => {
      const text = await metrics(bridge);
      return /^edge_bridge_consumer_lag\{/m.test(text) &&
        /^edge_bridge_consumer_lag_series_dropped_total [1-9]/m.test(text);
    });
    const lagLines = (await metrics(bridge)).split("\n").filter((l) =>
      l.startsWith("edge_bridge_consumer_lag{")
    );
    assert.equal(lagLines.length, 1, lagLines.join("\n"));

    // Giving a consumer back makes room on the bridge; ended subscriptions leave no lag series.
    for (const n of [1, 2]) {
      assert.equal((await c1.request({ op: "unsubscribe", sub: `s${n}` })).op, "unsubscribed");
    }
    await subscribed(c2, 5);
    assert.equal((await c2.request({ op: "unsubscribe", sub: "s4" })).op, "unsubscribed");
    assert.equal((await c2.request({ op: "unsubscribe", sub: "s5" })).op, "unsubscribed");
    const left = (await metrics(bridge)).split("\n").filter((l) => l.startsWith("edge_bridge_consumer_lag{"));
    assert.deepEqual(left, [], "no lag series outlives its subscription");
  } finally {
    await Promise.all([c1.close(), c2.close()]);
    assert.equal(await bridge.stop(), 0);
  }
});

/** A WebSocket client on a raw TCP socket, so that it can stop reading (a browser cannot). */
class RawClient {
  #pending = new Uint8Array(0);
  private constructor(readonly conn: Deno.TcpConn) {}

  static async connect(port: number): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const c = new RawClient(conn);
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await c.writeAll(new TextEncoder().encode(
      `GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ));
    while (!new TextDecoder().decode(c.#pending).includes("\r\n\r\n")) await c.#read();
    const text = new TextDecoder().decode(c.#pending);
    assert.match(text, /^HTTP\/1.1 101/);
    c.#pending = c.#pending.subarray(
      new TextEncoder().encode(text.slice(0, text.indexOf("\r\n\r\n") + 4)).length,
    );
    return c;
  }

  async #read(): Promise<boolean> {
    const buf = new Uint8Array(1 << 20);
    const n = await this.conn.read(buf);
    if (n === null) return false;
    const next = new Uint8Array(this.#pending.length + n);
    next.set(this.#pending);
    next.set(buf.subarray(0, n), this.#pending.length);
    this.#pending = next;
    return true;
  }

  /** Writes all of `data` (a write may take only part of it). */
  async writeAll(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length;) at += await this.conn.write(data.subarray(at));
  }

  /** A masked text frame (the mask is zero, which leaves the payload as it is). */
  static frame(text: string): Uint8Array {
    const payload = new TextEncoder().encode(text);
    const n = payload.length;
    const head = n < 126 ? [0x81, 0x80 | n] : n < 65536 ? [0x81, 0x80 | 126, n >> 8, n & 255] : [
      0x81,
      0x80 | 127,
      ...[0, 0, 0, 0, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255],
    ];
    const out = new Uint8Array(head.length + 4 + n);
    out.set(head);
    out.set(payload, head.length + 4);
    return out;
  }

  /** Reads frames until a close frame; returns its code (undefined if the socket ends first). */
  async readUntilClose(): Promise<{ code?: number; frames: number }> {
    let frames = 0;
    while (true) {
      const p = this.#pending;
      if (p.length >= 2) {
        const op = p[0] & 15;
        let len = p[1] & 127, at = 2;
        if (len === 126) (len = (p[2] << 8) | p[3]), (at = 4);
        else if (len === 127) {
          (len = Number(new DataView(p.buffer, p.byteOffset + 2, 8).getBigUint64(0))), (at = 10);
        }
        if (p.length >= at + len) {
          frames++;
          if (op === 8) return { code: (p[at] << 8) | p[at + 1], frames };
          this.#pending = p.subarray(at + len);
          continue;
        }
      }
      try {
        if (!(await this.#read())) return { frames };
      } catch {
        return { frames };
      }
    }
  }
}

Deno.test("limits: a client that never reads is closed with 4009 once its send buffer passes the bound; RSS stays bounded", async () => {
  const bridge = await BridgeProcess.start({
    set: [
      "server.slowConsumer.maxBufferedBytes=65536",
      "limits.maxSendBufferBytes=262144",
      "limits.bytesPerSecond=0",
    ],
  });
  const raw = await RawClient.connect(bridge.port);
  try {
    const rssBefore = await metric(bridge, 'edge_bridge_memory_bytes{kind="rss"}');
    // Each ping's id comes back in its pong: 192 MB of answers the client never reads. Unbounded,
    // the bridge would hold them all; bounded, it holds 256 KiB and drops the connection.
    const ping = RawClient.frame(JSON.stringify({ op: "ping", id: "x".repeat(64 * 1024) }));
    let sent = 0;
    try {
      for (; sent < 3000; sent++) await raw.writeAll(ping);
    } catch { /* cut by the bridge: it has seen enough */ }
    await until(
      "the 4009 close",
      async () => (await metric(bridge, "edge_bridge_send_buffer_closes_total")) >= 1,
    );
    const rssAfter = await metric(bridge, 'edge_bridge_memory_bytes{kind="rss"}');
    const grownMB = (rssAfter - rssBefore) / 1e6;
    console.log(
      `bridge RSS grew ${grownMB.toFixed(1)} MB while the client sent ${sent} pings and read nothing`,
    );
    // Far below the 192 MB an unbounded buffer would hold (what remains is garbage of the pings read).
    assert.ok(grownMB < 150, `RSS grew ${grownMB.toFixed(1)} MB`);
    const [trip] = bridge.logs(/does not read/);
    assert.ok(Number(trip.buffered) < 262_144 + 70_000, `closed at ${trip.buffered} bytes buffered`);
    const closed = await raw.readUntilClose();
    assert.equal(closed.code, 4009, `close frame after ${closed.frames} frames`);
    await until("the connection gone", async () => (await metric(bridge, "edge_bridge_connections")) === 0);
    const other = await bridge.connect();
    assert.equal((await other.request({ op: "ping" })).op, "pong", "the bridge serves others");
    await other.close();
  } finally {
    try {
      raw.conn.close();
    } catch { /* closed */ }
    assert.equal(await bridge.stop(), 0);
  }
});
