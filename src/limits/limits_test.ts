import assert from "node:assert/strict";
import { clientAddress } from "./address.ts";
import { ConnectionsPerIp } from "./connections_per_ip.ts";
import { ConsumerBudget } from "./consumer_budget.ts";
import { TokenBucket } from "./rate.ts";
import { type GuardedSocket, SendGuard } from "./send_guard.ts";

Deno.test("connections per IP: a slot per connection, given back on close; loopback counted only when asked", () => {
  const c = new ConnectionsPerIp(2, false);
  assert.ok(c.acquire("10.0.0.1") && c.acquire("10.0.0.1"));
  assert.ok(!c.acquire("10.0.0.1"));
  assert.ok(c.acquire("10.0.0.2"), "per address");
  c.release("10.0.0.1");
  assert.ok(c.acquire("10.0.0.1"));
  for (let i = 0; i < 5; i++) assert.ok(c.acquire("127.0.0.1"), "loopback not counted");
  const strict = new ConnectionsPerIp(1, true);
  assert.ok(strict.acquire("127.0.0.1") && !strict.acquire("127.0.0.1"));
  strict.release("127.0.0.1");
  assert.equal(strict.addresses, 0, "no entry is kept for an address without connections");
  assert.ok(new ConnectionsPerIp(0, true).acquire("x"), "0: no limit");
  assert.equal(clientAddress("::ffff:10.1.2.3"), "10.1.2.3");
  assert.equal(clientAddress(undefined), "unknown");
});

Deno.test("token bucket: a second's burst, then the rate; debt tells how long to wait", () => {
  const b = new TokenBucket(10, 0);
  for (let i = 0; i < 10; i++) assert.ok(b.tryTake(1, 0));
  assert.ok(!b.tryTake(1, 0));
  assert.ok(b.tryTake(1, 100), "100 ms refill one token");
  assert.ok(!b.tryTake(1, 100));
  const bytes = new TokenBucket(1000, 0);
  assert.equal(bytes.takeOrWait(500, 0), 0);
  assert.equal(bytes.takeOrWait(1500, 0), 1000, "1000 bytes of debt at 1000/s: wait a second");
  assert.equal(bytes.takeOrWait(0, 1000), 0);
  assert.ok(new TokenBucket(0).tryTake(1e9), "0: unlimited");
});

Deno.test("consumer budget: bounded, and given back", () => {
  const b = new ConsumerBudget(2);
  assert.ok(b.tryTake() && b.tryTake() && !b.tryTake());
  b.give();
  assert.ok(b.tryTake());
  assert.equal(b.inUse, 2);
});

Deno.test("send guard: past the bound nothing more is queued, the socket closes with 4009, then is cut", async () => {
  const sent: string[] = [];
  let closed: [number, string] | undefined;
  let terminated = false;
  const ws: GuardedSocket & { bufferedAmount: number } = {
    bufferedAmount: 0,
    readyState: 1,
    send: (t) => void (sent.push(t), (ws.bufferedAmount += t.length)),
    close: (code, reason) => void (closed = [code, reason]),
    terminate: () => void (terminated = true),
  };
  let trips = 0;
  const g = new SendGuard(ws, 10, () => trips++, 20);
  assert.ok(g.send("12345678"));
  assert.ok(g.send("12345678"), "at 8 bytes, under the bound: queued");
  assert.ok(!g.send("x"), "at 16 bytes, past it: refused");
  assert.ok(!g.send("y"));
  assert.deepEqual(sent.length, 2);
  assert.equal(closed?.[0], 4009);
  assert.equal(trips, 1, "reported once");
  await new Promise((r) => setTimeout(r, 40));
  assert.ok(terminated, "cut when the client does not answer the close");
});
