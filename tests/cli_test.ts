/** The command line: --help everywhere, clear config and flag errors, version, produce and consume. */
import assert from "node:assert/strict";
import { BridgeProcess, denoRunArgs } from "./helpers/bridge.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce, kcatRead, recordsByPosition } from "./helpers/kcat.ts";

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...denoRunArgs(), ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("cli: --help on every command", async (t) => {
  for (const cmd of [[], ["serve"], ["check-config"], ["version"], ["produce"], ["consume"]]) {
    await t.step(`edge-bridge ${cmd.join(" ")} --help`, async () => {
      const r = await run([...cmd, "--help"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /Usage: edge-bridge/);
    });
  }
});

Deno.test("cli: unknown commands and flags are usage errors (exit 2)", async () => {
  const r1 = await run(["frobnicate"]);
  assert.equal(r1.code, 2);
  assert.match(r1.stderr, /unknown command "frobnicate"/);
  const r2 = await run(["serve", "--prot", "1"]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /--prot/);
});

Deno.test("cli: produce and consume --help document every flag", async () => {
  const flags = {
    produce: ["--url", "--topic", "--rate", "--interval-ms", "--count", "--size", "--client-id", "--help"],
    consume: ["--url", "--topic", "--group", "--broadcast", "--from", "--count", "--help"],
  };
  for (const [cmd, names] of Object.entries(flags)) {
    const r = await run([cmd, "--help"]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of names) assert.match(r.stdout, new RegExp(`${f}\\b`), `${cmd} --help names ${f}`);
  }
  assert.match((await run(["produce", "--help"])).stdout, /sent N, acked N, duplicates N, failed N/);
  assert.match((await run(["consume", "--help"])).stdout, /received N, duplicates N, gaps N/);
});

Deno.test("cli: bad produce and consume flag values are usage errors (exit 2) that say what is wrong", async () => {
  const url = ["-u", "ws://127.0.0.1:9/ws"]; // never contacted: the flags are refused first
  const cases: [string[], RegExp][] = [
    [["produce", "-u", "localhost:8080"], /--url must be a ws:\/\/ or wss:\/\/ URL .*, got "localhost:8080"/],
    [["produce", ...url, "--rate", "0"], /--rate must be a number above 0, got "0"/],
    [["produce", ...url, "--rate", "fast"], /--rate must be a number above 0, got "fast"/],
    [["produce", ...url, "--count", "2.5"], /--count must be a whole number from 1, got "2.5"/],
    [["produce", ...url, "--count", "0"], /--count must be a whole number from 1, got "0"/],
    [["produce", ...url, "--size", "many"], /--size must be a whole number from 1, got "many"/],
    [
      ["produce", ...url, "--count", "100", "--size", "8"],
      /--size must be at least 9 bytes to hold "hello 100", got 8/,
    ],
    [["produce", ...url, "--size", "10"], /--size must be at least 22 bytes without --count/],
    [["produce", ...url, "--rate", "5", "--interval-ms", "100"], /give --rate or --interval-ms, not both/],
    [["produce", ...url, "--interval-ms", "-"], /--interval-ms must be a number above 0/],
    [["consume", "-u", "http://127.0.0.1:8080/ws"], /--url must be a ws:\/\/ or wss:\/\/ URL .*, got "http:/],
    [["consume", ...url, "--count", "x"], /--count must be a whole number from 1, got "x"/],
    [["consume", ...url, "--from", "middle"], /--from must be earliest or latest, got "middle"/],
    [["consume", ...url, "--rate", "1"], /Unknown option '--rate'/],
  ];
  for (const [args, message] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(" "));
  }
});

Deno.test("cli: produce --rate/--count/--size: Kafka holds exactly count records of that size, each acked where it is", async () => {
  const topic = uniqueTopic("cli-produce");
  await createTopics([{ name: topic, partitions: 3 }]);
  const bridge = await BridgeProcess.start();
  try {
    const [count, size, rate] = [300, 1000, 200];
    const started = performance.now();
    const p = await run([
      "produce",
      "-u",
      bridge.url,
      "-t",
      topic,
      "--rate",
      `${rate}`,
      "--count",
      `${count}`,
      "--size",
      `${size}`,
    ]);
    const elapsed = performance.now() - started;
    assert.equal(p.code, 0, p.stdout + p.stderr);
    const lines = p.stdout.trim().split("\n");
    assert.equal(lines.at(-1), `sent ${count}, acked ${count}, duplicates 0, failed 0`);
    // The rate is a ceiling on how fast messages go out: 300 at 200/s take at least 1.5 s.
    assert.ok(
      elapsed >= ((count - 1) / rate) * 1000,
      `${count} messages at ${rate}/s took only ${elapsed} ms`,
    );

    const acks = new Map<number, { partition: number; offset: string }>();
    for (const l of lines) {
      const m = /^acked hello (\d+) -> (.+)\/(\d+)@(\d+) \(epoch 0\)$/.exec(l);
      if (!m) continue;
      assert.equal(m[2], topic);
      assert.ok(!acks.has(Number(m[1])), `hello ${m[1]} acked once`);
      acks.set(Number(m[1]), { partition: Number(m[3]), offset: m[4] });
    }
    assert.deepEqual([...acks.keys()].sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i + 1));

    const records = await kcatRead(topic, undefined, count);
    assert.equal(records.length, count, "Kafka holds exactly count records");
    const recordAt = recordsByPosition(records);
    for (const [n, a] of acks) {
      const r = recordAt(a.partition, a.offset);
      assert.ok(r, `hello ${n} was acked at ${a.partition}@${a.offset}, which Kafka does not hold`);
      assert.equal(new TextEncoder().encode(r.payload!).length, size, `hello ${n} is ${size} bytes`);
      assert.match(r.payload!, new RegExp(`^hello ${n} \\.+$`));
    }

    // consume reads them back in a group: every number once, none missing.
    const c = await run([
      "consume",
      "-u",
      bridge.url,
      "-t",
      topic,
      "--from",
      "earliest",
      "--count",
      `${count}`,
    ]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const out = c.stdout.trim().split("\n");
    assert.equal(out.at(-1), `received ${count}, duplicates 0, gaps 0`);
    const printed = out.filter((l) => l.startsWith(`${topic}/`));
    assert.equal(printed.length, count);
    assert.match(printed[0], new RegExp(`^${topic}/\\d+@\\d+ hello \\d+ \\.+\\.\\.\\. \\(${size} bytes\\)$`));
  } finally {
    await bridge.stop();
  }
});

Deno.test("cli: produce exits 1 and counts failures when the bridge refuses every message", async () => {
  const bridge = await BridgeProcess.start();
  try {
    const p = await run([
      "produce",
      "-u",
      bridge.url,
      "-t",
      uniqueTopic("absent"),
      "--rate",
      "50",
      "-n",
      "3",
    ]);
    assert.equal(p.code, 1, p.stdout + p.stderr);
    assert.match(p.stdout, /^failed hello 1: .*UNKNOWN_TOPIC/m);
    assert.equal(p.stdout.trim().split("\n").at(-1), "sent 3, acked 0, duplicates 0, failed 3");
  } finally {
    await bridge.stop();
  }
});

Deno.test("cli: consume counts repeated and missing message numbers", async () => {
  const topic = uniqueTopic("cli-tally");
  await createTopics([{ name: topic, partitions: 1 }]);
  // Written straight to Kafka: "hello 2" twice (a duplicate), "hello 4" missing (a gap), one unnumbered value.
  await kcatProduce(topic, ["hello 1", "hello 2", "hello 3 ...", "hello 2", "hello 5", "not numbered"]);
  const bridge = await BridgeProcess.start();
  try {
    const c = await run([
      "consume",
      "-u",
      bridge.url,
      "-t",
      topic,
      "--broadcast",
      "--from",
      "earliest",
      "-n",
      "6",
    ]);
    assert.equal(c.code, 0, c.stdout + c.stderr);
    const out = c.stdout.trim().split("\n");
    assert.deepEqual(
      out.filter((l) => l.startsWith(`${topic}/`)).map((l) => l.split(" ").slice(1).join(" ")),
      [
        "hello 1",
        "hello 2",
        "hello 3 ...",
        "hello 2",
        "hello 5",
        "not numbered",
      ],
    );
    assert.equal(out.at(-1), "received 6, duplicates 1, gaps 1");
  } finally {
    await bridge.stop();
  }
});

Deno.test("cli: check-config names the key, the value and the source of each error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/bridge.yaml`;
    await Deno.writeTextFile(file, "server:\n  port: 99999\ntopics:\n  clientPrefix: kafka.\n");
    const bad = await run(["check-config", "--config", file], { EDGE_BRIDGE_LOG_LEVEL: "loud" });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /server\.port = 99999 \(from file .*bridge\.yaml\)/);
    assert.match(bad.stderr, /log\.level = "loud" \(from env EDGE_BRIDGE_LOG_LEVEL\)/);
    const good = await run(["check-config", "--config", file, "--port", "9000"]);
    assert.equal(good.code, 0, good.stderr);
    const cfg = JSON.parse(good.stdout);
    assert.equal(cfg.server.port, 9000);
    assert.equal(cfg.topics.clientPrefix, "kafka.");
    const missing = await run(["check-config", "--config", `${dir}/none.yaml`]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read config file .*none\.yaml/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli: version", async () => {
  const r = await run(["version", "--json"]);
  assert.equal(r.code, 0);
  const v = JSON.parse(r.stdout);
  assert.match(v.version, /^\d+\.\d+\.\d+$/);
  assert.equal(v.protocol, 1);
  assert.equal(v.deno, Deno.version.deno);
  assert.equal(v.target, Deno.build.target);
  const plain = await run(["version"]);
  assert.equal(plain.stdout.trim(), `edge-bridge ${v.version} (protocol v1, deno ${v.deno}, ${v.target})`);
});
