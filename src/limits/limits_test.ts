import assert from "node:assert/strict";
import { addressBlock, clientAddress } from "./address.ts";
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

Deno.test("connections per IP: IPv6 clients are counted per /64, whichever addresses of it they use", () => {
  const c = new ConnectionsPerIp(2, false);
  assert.ok(c.acquire("2001:db8:0:7::1") && c.acquire("2001:db8:0:7:aaaa:bbbb:cccc:dddd"));
  assert.ok(!c.acquire("2001:0db8:0000:0007:ffff::9"), "a third address of the same /64, written long");
  assert.ok(!c.acquire("2001:db8:0:7::1%eth0"), "a zone does not make it another host");
  assert.ok(c.acquire("2001:db8:0:8::1"), "the next /64 is another host");
  assert.equal(c.addresses, 2);
  c.release("2001:db8:0:7:aaaa:bbbb:cccc:dddd");
  assert.ok(c.acquire("2001:db8:0:7::2"), "a slot given back by any address of the /64");
  for (let i = 0; i < 5; i++) assert.ok(c.acquire("::1"), "loopback still not counted");

  assert.equal(addressBlock("2001:DB8::1"), "2001:db8:0:0::/64");
  assert.equal(addressBlock("fe80::1:2:3:4%eth0"), "fe80:0:0:0::/64");
  assert.equal(addressBlock("::"), "0:0:0:0::/64");
  assert.equal(addressBlock("64:ff9b:1:2:3:4:10.1.2.3"), "64:ff9b:1:2::/64", "an embedded IPv4 tail");
  assert.equal(addressBlock("::ffff:a01:203"), "10.1.2.3", "IPv4-mapped: its IPv4 host");
  assert.equal(addressBlock("10.1.2.3"), "10.1.2.3", "IPv4 as it is");
  for (
    const other of [
      "unknown",
      "proxy@127.0.0.1",
      "1:2:3",
      "1::2::3",
      "1:2:3:4:5:6:7:8:9",
      "g::1",
      "::1.2.3.999",
    ]
  ) {
    assert.equal(addressBlock(other), other, `not IPv6: counted as it is (${other})`);
  }
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
