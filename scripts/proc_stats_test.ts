import assert from "node:assert/strict";
import { cpuSeconds, rssBytes, tcpConnectionsTo } from "./proc_stats.ts";

Deno.test("proc stats: this process's CPU time grows with work, and its memory is counted", () => {
  const before = cpuSeconds("self");
  const until = performance.now() + 120;
  let x = 0;
  while (performance.now() < until) x += Math.sqrt(x + 1);
  assert.ok(x > 0);
  assert.ok(cpuSeconds("self") - before >= 0.05, "120 ms of spinning shows as CPU time");
  assert.ok(rssBytes("self") > 10 * 1024 * 1024);
  assert.ok(cpuSeconds(Deno.pid) >= cpuSeconds("self") - 0.01);
});

Deno.test("proc stats: counts this process's established connections to a port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepted: Deno.Conn[] = [];
  const accepting = (async () => {
    for (let i = 0; i < 3; i++) accepted.push(await listener.accept());
  })();
  const conns = await Promise.all([1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port })));
  await accepting;
  try {
    assert.equal(tcpConnectionsTo(Deno.pid, port), 3);
  } finally {
    for (const c of [...conns, ...accepted]) c.close();
    listener.close();
  }
});
