import assert from "node:assert/strict";
import { isLoopbackAddress, isLoopbackHost } from "./ip.ts";

Deno.test("loopback: every written form of a loopback address is one", () => {
  for (
    const h of [
      "127.0.0.1",
      "127.1.2.3",
      "localhost",
      "LOCALHOST",
      "::1",
      "[::1]",
      "0:0:0:0:0:0:0:1",
      "0000:0000:0000:0000:0000:0000:0000:0001",
      "0::1",
      "::ffff:127.0.0.1",
      "[::ffff:127.9.9.9]",
      "::ffff:7f00:1",
    ]
  ) assert.ok(isLoopbackHost(h), h);
});

Deno.test("loopback: other addresses, names and malformed text are not", () => {
  for (
    const h of [
      "0.0.0.0",
      "::",
      "10.0.0.1",
      "128.0.0.1",
      "127.0.0.256",
      "edge-1.example",
      "localhost.example",
      "::2",
      "1::1",
      "::ffff:10.0.0.1",
      "::ffff:127.0.0.300",
      "0:0:0:0:0:0:0:0:1",
      "::1::",
      "fe80::1%lo",
      "::g1",
      "",
    ]
  ) assert.ok(!isLoopbackHost(h), h);
});

Deno.test("loopback: a socket address is loopback in any form; a name never is", () => {
  for (const ip of ["127.0.0.1", "::1", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1"]) {
    assert.ok(isLoopbackAddress(ip), ip);
  }
  for (const ip of ["localhost", "[::1]", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1%lo"]) {
    assert.ok(!isLoopbackAddress(ip), ip);
  }
});
