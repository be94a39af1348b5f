/**
 * The SDK against a fake bridge: a real WebSocket server (Deno.serve) on a random port
 * whose every move the test scripts, so reconnects, refusals and replays are exact.
 */
import assert from "node:assert/strict";
import type { WelcomeFrame } from "../protocol/frames.ts";
import { EdgeBridgeClient, type EdgeBridgeClientOptions } from "./client.ts";
import { ClientClosedError, OutboxFullError, PublishError, SubscriptionError } from "./errors.ts";
import type { Message } from "./subscription.ts";

// deno-lint-ignore no-explicit-any
type Frame = Record<string, any>;

const WAIT_MS = 5000;

/** Rejects (with `what`) instead of hanging when something never happens. */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

class FakeConn {
  readonly received: Frame[] = [];
  readonly #unread: Frame[] = [];
  #wake?: () => void;
  readonly closed: Promise<void>;

  constructor(readonly socket: WebSocket) {
    this.closed = new Promise((r) => socket.addEventListener("close", () => r()));
    socket.onmessage = (e) => {
      const f = JSON.parse(e.data);
      this.received.push(f);
      this.#unread.push(f);
      this.#wake?.();
    };
  }

  send(frame: Frame): void {
    this.socket.send(JSON.stringify(frame));
  }

  /** The next `n` frames with this op, in arrival order (other frames stay unread). */
  async take(op: string, n = 1): Promise<Frame[]> {
    const run = async () => {
      while (this.#unread.filter((f) => f.op === op).length < n) {
        await new Promise<void>((r) => (this.#wake = r));
      }
      const out: Frame[] = [];
      for (let i = 0; i < this.#unread.length && out.length < n;) {
        if (this.#unread[i].op === op) out.push(...this.#unread.splice(i, 1));
        else i++;
      }
      return out;
    };
    return await within(run(), `${n} "${op}" frame(s)`);
  }

  async one(op: string): Promise<Frame> {
    return (await this.take(op))[0];
  }

  ops(): string[] {
    return this.received.map((f) => f.op === "publish" ? `publish ${f.seq}` : f.op);
  }

  async close(code = 1000, reason = ""): Promise<void> {
    if (this.socket.readyState <= 1) this.socket.close(code, reason);
    await this.closed;
  }
}

function welcome(patch: Partial<WelcomeFrame> = {}): WelcomeFrame {
  return {
    op: "welcome",
    v: 1,
    node: "fake",
    role: "live",
    epoch: 0,
    session: crypto.randomUUID(),
    limits: { maxFrameBytes: 1 << 20, maxInflightPublishes: 256, maxSubscriptions: 16, maxCredit: 10_000 },
    ...patch,
  };
}

class FakeBridge {
  readonly conns: FakeConn[] = [];
  readonly url: string;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  #wake?: () => void;

  /** `greet` runs on each new connection; by default it sends a live `welcome`. */
  constructor(greet: (c: FakeConn) => void = (c) => c.send(welcome())) {
    this.#server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      const conn = new FakeConn(socket);
      socket.addEventListener("open", () => {
        this.conns.push(conn);
        greet(conn);
        this.#wake?.();
      });
      return response;
    });
    this.url = `ws://127.0.0.1:${this.#server.addr.port}/ws`;
  }

  /** The connection number `i` (0-based), once it exists. */
  async conn(i: number): Promise<FakeConn> {
    const run = async () => {
      while (this.conns.length <= i) await new Promise<void>((r) => (this.#wake = r));
      return this.conns[i];
    };
    return await within(run(), `connection #${i + 1} to ${this.url}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.conns.map((c) => c.close()));
    await this.#server.shutdown();
  }
}

function newClient(urls: string[], extra: Partial<EdgeBridgeClientOptions> = {}) {
  const client = new EdgeBridgeClient({
    urls,
    clientId: "test-client",
    backoff: { initialMs: 1, maxMs: 20 },
    ...extra,
  });
  const logs: string[] = [];
  client.addEventListener("log", (e) => logs.push(e.detail.message));
  return { client, logs };
}

const ack = (c: FakeConn, f: Frame, extra: Frame = {}) =>
  c.send({
    op: "ack",
    id: f.id,
    topic: f.topic,
    partition: 0,
    offset: String(100 + f.seq),
    epoch: 0,
    ...extra,
  });

function message(sub: string, partition: number, offset: string): Frame {
  return {
    op: "message",
    sub,
    topic: "t",
    partition,
    offset,
    timestamp: "1",
    key: null,
    keyEncoding: "utf8",
    value: `${partition}@${offset}`,
    encoding: "utf8",
    headers: {},
  };
}

Deno.test("client: hello first, then publishes numbered 1, 2, 3 with acked = the answered floor", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  try {
    await within(client.ready(), "ready");
    const c = await bridge.conn(0);
    const hello = await c.one("hello");
    assert.deepEqual([hello.clientId, hello.lastEpoch, hello.instance], ["test-client", 0, client.instance]);
    assert.match(
      client.instance,
      /^[0-9a-f-]{36}$/,
      "a fresh instance per client object: seqs start at 1 safely",
    );

    const p1 = client.publish("t", "a");
    const p2 = client.publish("t", { x: 1 });
    const p3 = client.publish("t", "c", { key: "k", headers: { h: "1" } });
    const [f1, f2, f3] = await c.take("publish", 3);
    assert.deepEqual([f1.seq, f2.seq, f3.seq], [1, 2, 3]);
    assert.deepEqual([f1.acked, f2.acked, f3.acked], [undefined, undefined, undefined]); // 0 is omitted
    assert.deepEqual([f1.encoding, f2.encoding, f2.value, f3.key, f3.headers], [
      "utf8",
      "json",
      { x: 1 },
      "k",
      {
        h: "1",
      },
    ]);

    ack(c, f2, { duplicate: true, epoch: 2 });
    assert.deepEqual(await p2, {
      topic: "t",
      partition: 0,
      offset: "102",
      epoch: 2,
      duplicate: true,
      seq: 2,
    });
    assert.equal(client.state.highestEpoch, 2);

    const p4 = client.publish("t", "d");
    assert.equal((await c.one("publish")).acked, undefined); // seq 1 still open
    ack(c, f1);
    assert.equal((await p1).duplicate, false);
    const p5 = client.publish("t", "e");
    const f5 = await c.one("publish");
    assert.deepEqual([f5.seq, f5.acked], [5, 2]); // 3 is open
    ack(c, f3);
    ack(c, { id: "p4", topic: "t", seq: 4 });
    ack(c, f5);
    await Promise.all([p3, p4, p5]);
    const p6 = client.publish("t", "f");
    const f6 = await c.one("publish");
    assert.deepEqual([f6.seq, f6.acked], [6, 5]);
    ack(c, f6);
    await p6;
  } finally {
    await client.close();
    await bridge.stop();
  }
});

Deno.test("client: after a drop, hello, then the outbox in seq order with the same seqs, then the subscriptions", async () => {
  const a = new FakeBridge();
  const b = new FakeBridge((c) => c.send(welcome({ node: "b", epoch: 1 })));
  const { client, logs } = newClient([a.url, b.url]);
  try {
    const ca = await a.conn(0);
    await within(client.ready(), "ready");
    const sub = client.subscribe("t", { from: "earliest" });
    const s = await ca.one("subscribe");
    ca.send({ op: "subscribed", id: s.id, sub: s.sub, topic: "t", mode: "broadcast" });
    await within(sub.ready(), "subscribed");
    const pubs = [client.publish("t", "1"), client.publish("t", "2"), client.publish("t", "3")];
    const [f1] = await ca.take("publish", 3);
    ack(ca, f1);
    await pubs[0];
    await ca.close(1001, "shutting down");

    const cb = await b.conn(0);
    const [f2, f3] = await cb.take("publish", 2);
    await cb.one("subscribe");
    assert.deepEqual(cb.ops(), ["hello", "publish 2", "publish 3", "subscribe"]);
    assert.deepEqual(cb.received[0].lastEpoch, 1);
    assert.deepEqual([f2.id, f2.acked, f2.value, f3.id, f3.acked, f3.value], ["p2", 1, "2", "p3", 1, "3"]);
    ack(cb, f2);
    ack(cb, f3);
    await Promise.all(pubs);
    assert.equal(client.state.node, "b");
    assert.ok(logs.includes("resent 2 publishes"), logs.join("\n"));
    assert.ok(
      logs.some((l) => /^connection lost: .* closed \(1001 shutting down\); retrying in \d+ ms$/.test(l)),
      logs.join("\n"),
    );
  } finally {
    await client.close({ timeoutMs: 0 });
    await a.stop();
    await b.stop();
  }
});

Deno.test("client: a backup's 4001 live=<url> sends the client to that live, even when it is not in the list", async () => {
  const live = new FakeBridge((c) => c.send(welcome({ node: "live", epoch: 3 })));
  const backup = new FakeBridge((c) => {
    c.send({
      op: "error",
      code: "NOT_LIVE",
      message: "this node is a backup",
      retryable: true,
      live: live.url,
    });
    c.socket.close(4001, `live=${live.url}`);
  });
  const { client, logs } = newClient([backup.url]);
  try {
    await within(client.ready(), "ready");
    assert.deepEqual(
      [client.state.status, client.state.url, client.state.node, client.state.highestEpoch],
      ["open", live.url, "live", 3],
    );
    assert.ok(
      logs.some((l) => l.startsWith(`${backup.url} is a backup; live is ${live.url}; retrying in`)),
      logs.join("\n"),
    );
    assert.equal((await (await live.conn(0)).one("hello")).lastEpoch, 3);
  } finally {
    await client.close();
    await live.stop();
    await backup.stop();
  }
});

Deno.test("client: a retryable nack is resent with the same seq; a non-retryable one rejects the publish", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  try {
    const c = await bridge.conn(0);
    const p1 = client.publish("t", "x");
    const first = await c.one("publish");
    c.send({ op: "nack", id: first.id, code: "KAFKA_UNAVAILABLE", message: "down", retryable: true });
    const again = await c.one("publish");
    assert.deepEqual([again.id, again.seq, again.value], [first.id, 1, "x"]);
    ack(c, again);
    assert.equal((await p1).seq, 1);

    const p2 = client.publish("t", "too big");
    const f2 = await c.one("publish");
    c.send({
      op: "nack",
      id: f2.id,
      code: "RECORD_TOO_LARGE",
      message: "record of 9 bytes > 8",
      retryable: false,
    });
    await assert.rejects(
      p2,
      (e) =>
        e instanceof PublishError && e.code === "RECORD_TOO_LARGE" && e.retryable === false &&
        e.maybeWritten === false && e.seq === 2 && /record of 9 bytes/.test(e.message),
    );
    client.publish("t", "after").catch(() => {});
    assert.equal((await c.one("publish")).acked, 2); // a final refusal counts as answered
  } finally {
    await client.close({ timeoutMs: 0 }).catch(() => {});
    await bridge.stop();
  }
});

Deno.test("client: no more than maxInflightPublishes on the wire; the rest follow as acks come", async () => {
  const bridge = new FakeBridge((c) =>
    c.send(welcome({
      limits: { maxFrameBytes: 1 << 20, maxInflightPublishes: 2, maxSubscriptions: 16, maxCredit: 10_000 },
    }))
  );
  const { client } = newClient([bridge.url]);
  try {
    await within(client.ready(), "ready");
    const c = await bridge.conn(0);
    const pubs = [1, 2, 3, 4, 5].map((n) => client.publish("t", String(n)));
    client.subscribe("t"); // sent after whatever publishes went out: a barrier
    await c.one("subscribe");
    assert.deepEqual(c.ops().filter((o) => o.startsWith("publish")), ["publish 1", "publish 2"]);
    const [f1, f2] = await c.take("publish", 2);
    ack(c, f2);
    const [f3] = await c.take("publish", 1);
    assert.equal(f3.seq, 3);
    ack(c, f1);
    const [f4] = await c.take("publish", 1);
    ack(c, f3);
    ack(c, f4);
    ack(c, (await c.take("publish", 1))[0]);
    await Promise.all(pubs);
  } finally {
    await client.close({ timeoutMs: 0 });
    await bridge.stop();
  }
});

Deno.test("client: the outbox refuses past its limit with OutboxFullError", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url], { outbox: { maxMessages: 2 } });
  try {
    const held = [client.publish("t", "1"), client.publish("t", "2")];
    await assert.rejects(
      client.publish("t", "3"),
      (e) => e instanceof OutboxFullError && /limits: 2 messages/.test(e.message),
    );
    const c = await bridge.conn(0);
    for (const f of await c.take("publish", 2)) ack(c, f);
    await Promise.all(held);
  } finally {
    await client.close();
    await bridge.stop();
  }
});

Deno.test("client: a broadcast subscription resumes after failover with no gap and no repeat", async () => {
  const a = new FakeBridge();
  const b = new FakeBridge();
  const { client } = newClient([a.url, b.url]);
  try {
    const sub = client.subscribe("t", { from: "earliest", credit: 4 });
    const it = sub[Symbol.asyncIterator]();
    const ca = await a.conn(0);
    const s1 = await ca.one("subscribe");
    ca.send({
      op: "subscribed",
      id: s1.id,
      sub: s1.sub,
      topic: "t",
      mode: "broadcast",
      start: { "0": "0", "1": "10" },
    });
    for (const [p, o] of [[0, "0"], [0, "1"], [1, "10"]] as const) ca.send(message(s1.sub, p, o));
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      seen.push(((await within(it.next(), "message")).value as Message).value as string);
    }
    await ca.close(1011, "boom");

    const cb = await b.conn(0);
    const s2 = await cb.one("subscribe");
    assert.deepEqual([s2.sub, s2.from, s2.credit], [s1.sub, { offsets: { "0": "2", "1": "11" } }, 4]);
    cb.send({ op: "subscribed", id: s2.id, sub: s2.sub, topic: "t", mode: "broadcast" });
    // The new bridge replays two the application already has, then goes on.
    for (const [p, o] of [[0, "1"], [1, "10"], [0, "2"]] as const) cb.send(message(s2.sub, p, o));
    seen.push(((await within(it.next(), "message")).value as Message).value as string);
    assert.deepEqual(seen, ["0@0", "0@1", "1@10", "0@2"]);
    assert.deepEqual((await cb.one("credit")).n, 2); // the dropped replays' credit comes back
  } finally {
    await client.close({ timeoutMs: 0 });
    await a.stop();
    await b.stop();
  }
});

Deno.test("client: a group commit unconfirmed at a drop is resent on the new link", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  try {
    const sub = client.subscribe("t", { mode: "group", group: "g" });
    const c0 = await bridge.conn(0);
    const s = await c0.one("subscribe");
    c0.send({ op: "subscribed", id: s.id, sub: s.sub, topic: "t", mode: "group", group: "g" });
    c0.send(message(s.sub, 0, "7"));
    const m = (await within(sub[Symbol.asyncIterator]().next(), "message")).value as Message;
    const committed = sub.commit(m);
    assert.equal((await c0.one("commit")).offset, "7");
    await c0.close(1001);

    const c1 = await bridge.conn(1);
    const s2 = await c1.one("subscribe");
    assert.deepEqual([s2.mode, s2.group, s2.from], ["group", "g", "latest"]);
    c1.send({ op: "subscribed", id: s2.id, sub: s2.sub, topic: "t", mode: "group", group: "g" });
    const again = await c1.one("commit"); // sent once at once: Kafka may hold it already
    assert.deepEqual([again.partition, again.offset], [0, "7"]);
    c1.send({ op: "committed", id: again.id, sub: s2.sub, partition: 0, offset: "7" });
    await within(committed, "committed");

    const closing = sub.close();
    const u = await c1.one("unsubscribe");
    c1.send({ op: "unsubscribed", id: u.id, sub: u.sub });
    await within(closing, "unsubscribed");
  } finally {
    await client.close({ timeoutMs: 0 });
    await bridge.stop();
  }
});

Deno.test("client: a subscription the bridge ends for good surfaces as a SubscriptionError", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  try {
    const sub = client.subscribe("t");
    const c = await bridge.conn(0);
    const s = await c.one("subscribe");
    c.send({ op: "subscribed", id: s.id, sub: s.sub, topic: "t", mode: "broadcast" });
    c.send({
      op: "error",
      sub: s.sub,
      code: "SUBSCRIBE_DENIED",
      message: "token narrowed",
      retryable: false,
    });
    c.send({
      op: "unsubscribed",
      sub: s.sub,
      reason: "the refreshed token no longer allows this subscription",
    });
    await assert.rejects(
      async () => {
        for await (const _ of sub) { /* nothing is delivered */ }
      },
      (e) =>
        e instanceof SubscriptionError && e.code === "SUBSCRIBE_DENIED" &&
        /no longer allows/.test(e.message),
    );
  } finally {
    await client.close();
    await bridge.stop();
  }
});

Deno.test("client: close drains the outbox and unsubscribes, then refuses publishes", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  const states: string[] = [];
  const watching = (async () => {
    for await (const s of client.states()) states.push(s.status);
  })();
  const c = await bridge.conn(0);
  const sub = client.subscribe("t");
  const s = await c.one("subscribe");
  c.send({ op: "subscribed", id: s.id, sub: s.sub, topic: "t", mode: "broadcast" });
  await within(sub.ready(), "subscribed");
  const p = client.publish("t", "last words");
  const closing = client.close();
  await assert.rejects(client.publish("t", "too late"), ClientClosedError);
  ack(c, await c.one("publish"));
  assert.equal((await p).seq, 1);
  const u = await c.one("unsubscribe");
  c.send({ op: "unsubscribed", id: u.id, sub: u.sub });
  await within(closing, "close");
  await watching;
  assert.equal(client.state.status, "closed");
  assert.deepEqual(states.at(-1), "closed");
  assert.ok(states.includes("open"));
  await assert.rejects(client.ready(), ClientClosedError);
  await bridge.stop();
});

Deno.test("client: publishes unanswered when close times out reject with CLIENT_CLOSED", async () => {
  const bridge = new FakeBridge();
  const { client } = newClient([bridge.url]);
  const c = await bridge.conn(0);
  const p = client.publish("t", "never acked");
  await c.one("publish");
  await client.close({ timeoutMs: 50 });
  await assert.rejects(p, (e) => e instanceof PublishError && e.code === "CLIENT_CLOSED" && e.maybeWritten);
  await bridge.stop();
});

Deno.test("client: closing while no bridge answers ends the retry loop; ready() rejects", async () => {
  const gone = new FakeBridge();
  const url = gone.url;
  await gone.stop(); // nothing listens there any more
  const { client, logs } = newClient([url]);
  const ready = client.ready();
  await within(
    (async () => {
      while (!logs.some((l) => l.startsWith(`cannot connect to ${url}`))) {
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
    "a failed attempt",
  );
  assert.equal(client.state.status, "connecting");
  const p = client.publish("t", "queued");
  await client.close({ timeoutMs: 20 });
  await assert.rejects(ready, ClientClosedError);
  await assert.rejects(p, (e) => e instanceof PublishError && e.code === "CLIENT_CLOSED" && !e.maybeWritten);
});
