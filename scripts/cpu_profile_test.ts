import assert from "node:assert/strict";
import {
  type CallFrame,
  type CpuProfile,
  decodeMappings,
  formatMarkdown,
  OPS,
  packageOf,
  RUNTIME,
  shortUrl,
  startProfile,
  summarize,
} from "./cpu_profile.ts";

const root = "file:///repo/";
const npm = "file:///home/u/.cache/deno/npm/registry.npmjs.org/";
const frame = (functionName: string, url = "", lineNumber = -1): CallFrame => ({
  functionName,
  scriptId: "0",
  url,
  lineNumber,
  columnNumber: 0,
});

// root ─┬ (idle) 2, (garbage collector) 4
//       ├ handle (src/session) 5 ─ send (kafkajs) 6
//       ├ flush (src/kafka) 7 ─ send (kafkajs) 8: the same function as 6, on another path
//       └ (anonymous) (ws) 9, then an ext: frame 10 and an op 11
const send = frame("send", `${npm}kafkajs/2.2.4/src/producer/sendMessages.js`, 41);
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 4, 5, 7, 9, 10, 11] },
    { id: 2, callFrame: frame("(idle)") },
    { id: 4, callFrame: frame("(garbage collector)") },
    { id: 5, callFrame: frame("handle", `${root}src/session/session.ts`, 9), children: [6] },
    { id: 6, callFrame: send },
    { id: 7, callFrame: frame("flush", `${root}src/kafka/producer.ts`, 19), children: [8] },
    { id: 8, callFrame: { ...send } },
    { id: 9, callFrame: frame("", `${npm}ws/8.18.3/lib/sender.js`, 99) },
    { id: 10, callFrame: frame("write", "ext:deno_node/internal/stream_base_commons.ts", 0) },
    { id: 11, callFrame: frame("op_net_write", "") },
  ],
  // Sample i lasts until sample i+1 (the last one until endTime): durations, in µs,
  //            100  300  200  100  400  100  200  100  1000   (idle 1100, busy 1400)
  samples: [2, 5, 6, 8, 6, 4, 9, 10, 2],
  timeDeltas: [0, 100, 300, 200, 100, 400, 100, 200, 100],
  startTime: 1000,
  endTime: 3500,
};

const close = (actual: number | null, expected: number) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${actual} != ${expected}`);

Deno.test("cpu_profile: self time comes from timeDeltas, not hit counts, and merges call paths", () => {
  const s = summarize(profile, 25, root);
  assert.equal(s.samples, 9);
  close(s.totalMs, 2.5);
  close(s.idleMs, 1.1);
  assert.deepEqual(
    s.functions.map((f) => [f.name, f.location, f.package, f.samples]),
    [
      ["(idle)", "", "(idle)", 2],
      ["send", "kafkajs/2.2.4/src/producer/sendMessages.js:42", "kafkajs", 3],
      ["handle", "src/session/session.ts:10", "src/session", 1],
      ["(anonymous)", "ws/8.18.3/lib/sender.js:100", "ws", 1],
      ["(garbage collector)", "", "(garbage collector)", 1],
      ["write", "ext:deno_node/internal/stream_base_commons.ts:1", RUNTIME, 1],
    ],
  );
  const fn = (name: string) => s.functions.find((f) => f.name === name)!;
  close(fn("(idle)").selfMs, 1.1);
  assert.equal(fn("(idle)").pct, null);
  close(fn("send").selfMs, 0.7); // 200 + 100 + 400 µs over two paths; by hit count it would be 3/7
  close(fn("send").pct, 50);
  close(fn("handle").selfMs, 0.3); // its own sample only, not its callee's
  close(fn("handle").pct, (100 * 0.3) / 1.4);
  assert.equal(fn("flush"), undefined); // never on top of the stack: no self time
});

Deno.test("cpu_profile: packages roll up as percentages of non-idle time", () => {
  const s = summarize(profile, 25, root);
  assert.deepEqual(s.packages.map((p) => p.package), [
    "(idle)",
    "kafkajs",
    "src/session",
    "ws",
    "(garbage collector)",
    RUNTIME,
  ]);
  const pct = Object.fromEntries(s.packages.map((p) => [p.package, p.pct]));
  assert.equal(pct["(idle)"], null);
  close(pct.kafkajs, 50);
  close(pct["src/session"], (100 * 3) / 14);
  close(pct.ws, (100 * 2) / 14);
  close(pct["(garbage collector)"], 100 / 14);
  close(pct[RUNTIME], 100 / 14);
  close(s.packages.reduce((sum, p) => sum + (p.pct ?? 0), 0), 100);
});

Deno.test("cpu_profile: top N keeps the N costliest functions", () => {
  const s = summarize(profile, 2, root);
  assert.deepEqual(s.functions.map((f) => f.name), ["(idle)", "send"]);
  assert.equal(s.packages.length, 6); // the rollup is never cut
});

Deno.test("cpu_profile: urls shorten to the npm package path or the repo path", () => {
  assert.equal(shortUrl(`${npm}pino/9.7.0/lib/proto.js`, root), "pino/9.7.0/lib/proto.js");
  assert.equal(shortUrl("file:///repo/node_modules/ws/lib/sender.js", root), "ws/lib/sender.js");
  assert.equal(shortUrl(`${root}main.ts`, root), "main.ts");
  assert.equal(shortUrl("ext:core/01_core.js", root), "ext:core/01_core.js");
  assert.equal(
    packageOf(frame("f", `${npm}@opentelemetry/api/1.9.0/build/x.js`), root),
    "@opentelemetry/api",
  );
  assert.equal(packageOf(frame("f", `${npm}prom-client/15.1.3/lib/gauge.js`), root), "prom-client");
  assert.equal(packageOf(frame("f", `${root}src/app.ts`), root), "src/app.ts");
  assert.equal(packageOf(frame("f", `${root}main.ts`), root), "main.ts");
  assert.equal(packageOf(frame("f", "node:buffer"), root), RUNTIME);
  assert.equal(packageOf(frame("op_read_all"), root), OPS);
  assert.equal(packageOf(frame("(program)"), root), "(program)");
  assert.equal(packageOf(frame("f", "file:///elsewhere/x.ts"), root), "other");
});

Deno.test("cpu_profile: markdown has a function table and a package table", () => {
  const md = formatMarkdown(summarize(profile, 25, root));
  assert.match(md, /^9 samples over 2\.5 ms, 1\.4 ms not idle \(56\.0%\)/);
  assert.equal(md.split("\n\n").length, 3);
  assert.ok(md.includes("| 1 | 1.1 | — | (idle) |  |"), md);
  assert.ok(md.includes("| 2 | 0.7 | 50.0% | send | kafkajs/2.2.4/src/producer/sendMessages.js:42 |"), md);
  assert.ok(md.includes("| kafkajs | 0.7 | 50.0% |"), md);
  assert.ok(md.includes("| src/session | 0.3 | 21.4% |"), md);
});

Deno.test("cpu_profile: source map mappings decode to absolute positions", () => {
  // "AAAA" = [0,0,0,0]; "IACA" = +4 columns, +1 source line; a new line resets only the column.
  assert.deepEqual(decodeMappings("AAAA,IACA;;EAEE,gBAAgB"), [
    [[0, 0, 0, 0], [4, 0, 1, 0]],
    [],
    [[2, 0, 3, 2], [18, 0, 3, 18]],
  ]);
  assert.deepEqual(decodeMappings("AAAA;AACD"), [[[0, 0, 0, 0]], [[0, 0, 1, -1]]]); // negative delta
  assert.deepEqual(decodeMappings("2HAAA"), [[[123, 0, 0, 0]]]); // multi-digit VLQ: 22 + 7 * 32
});

Deno.test("cpu_profile: startProfile samples a real `deno run --inspect` process", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const at = `127.0.0.1:${(l.addr as Deno.NetAddr).port}`;
  l.close();
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  // Burns CPU in an async loop, not a timer callback (one can be inlined into Deno's timer code);
  // the interface is erased from the emitted JS, so unmapped lines would be 3 less.
  await Deno.writeTextFile(
    script,
    `interface Unused {
  n: number;
}
let sink: number = 0;
function burn() { for (let i = 0; i < 1e6; i++) sink += Math.sqrt(i); }
async function spin() { for (;;) { burn(); await new Promise((r) => setTimeout(r, 1)); } }
spin();
`,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", `--inspect=${at}`, script],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const profiler = await startProfile(at); // waits for the child's inspector
    await new Promise((r) => setTimeout(r, 500));
    const p = await profiler.stop();
    assert.ok(p.samples.length > 100 && p.samples.length === p.timeDeltas.length);
    assert.ok(p.endTime > p.startTime);
    const s = summarize(p);
    const mine = s.functions.filter((f) => f.location.includes(script.split("/").pop()!));
    const ms = mine.reduce((sum, f) => sum + f.selfMs, 0);
    assert.ok(ms > 100 && ms < s.totalMs, formatMarkdown(s));
    assert.ok(mine.some((f) => f.name === "burn" || f.name === "spin"), formatMarkdown(s));
    // Lines are the TypeScript source's (Deno's emitted JS differs), via the inline source map.
    for (const [name, line] of [["burn", 5], ["spin", 6]] as const) {
      const f = mine.find((f) => f.name === name);
      if (f) assert.ok(f.location.endsWith(`.ts:${line}`), f.location);
    }
    assert.ok(mine.every((f) => f.package === "other"), formatMarkdown(s));
  } finally {
    child.kill();
    await child.status;
    await Deno.remove(script);
  }
});
