/** The command line: --help everywhere, clear config errors, version. */
import assert from "node:assert/strict";
import { denoRunArgs } from "./helpers/bridge.ts";

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
  for (const cmd of [[], ["serve"], ["check-config"], ["version"]]) {
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
});
