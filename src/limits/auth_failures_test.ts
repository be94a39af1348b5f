import assert from "node:assert/strict";
import { AuthFailures } from "./auth_failures.ts";

Deno.test("auth failures: past max in the window the address waits out the window, others do not", () => {
  const f = new AuthFailures(3, 10_000, false);
  for (let i = 0; i < 3; i++) {
    assert.equal(f.waitMs("10.0.0.1", 1_000 + i), 0, `attempt ${i + 1} is checked`);
    f.failed("10.0.0.1", 1_000 + i);
  }
  assert.equal(f.waitMs("10.0.0.1", 2_000), 9_000, "the window began at the first failure");
  assert.equal(f.waitMs("10.0.0.2", 2_000), 0, "per address");
  assert.equal(f.waitMs("10.0.0.1", 11_000), 0, "the window passed");
  f.failed("10.0.0.1", 11_000);
  assert.equal(f.waitMs("10.0.0.1", 11_001), 0, "a new window counts from one");
});

Deno.test("auth failures: loopback exempt unless counted; 0 is no limit", () => {
  const f = new AuthFailures(1, 10_000, false);
  f.failed("127.0.0.1", 0);
  f.failed("::1", 0);
  assert.equal(f.waitMs("127.0.0.1", 1), 0);
  assert.equal(f.addresses, 0, "nothing kept for loopback");
  const strict = new AuthFailures(1, 10_000, true);
  strict.failed("127.0.0.1", 0);
  assert.ok(strict.waitMs("127.0.0.1", 1) > 0);
  const off = new AuthFailures(0, 10_000, true);
  for (let i = 0; i < 100; i++) off.failed("10.0.0.1", i);
  assert.equal(off.waitMs("10.0.0.1", 100), 0);
  assert.equal(off.addresses, 0);
});

Deno.test("auth failures: the table of addresses is bounded", () => {
  const f = new AuthFailures(1, 10_000, false);
  for (let i = 0; i < 60_000; i++) f.failed(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0);
  assert.equal(f.addresses, 50_000);
  assert.ok(f.waitMs("10.0.234.95", 1) > 0, "the newest are kept");
  f.failed("192.0.2.1", 20_000);
  assert.equal(f.addresses, 1, "passed windows are pruned first");
});

Deno.test("auth failures: IPv6 addresses count by their /64, IPv4-mapped ones as the IPv4 host", () => {
  const f = new AuthFailures(2, 10_000, false);
  f.failed("2001:db8:0:7::1", 0);
  f.failed("2001:db8:0:7:abcd:1:2:3", 1); // the same host, another address in its /64
  assert.ok(f.waitMs("2001:db8:0:7::ffff", 2) > 0, "any address of that /64 waits");
  assert.equal(f.waitMs("2001:db8:0:8::1", 2), 0, "the next /64 is another host");
  assert.equal(f.addresses, 1);
  f.failed("::ffff:10.1.2.3", 3);
  f.failed("10.1.2.3", 4);
  assert.ok(f.waitMs("10.1.2.3", 5) > 0, "a mapped address is its IPv4 host");
});
