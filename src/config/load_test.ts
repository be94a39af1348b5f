import assert from "node:assert/strict";
import { buildConfig, CONFIG_KEYS, ConfigError } from "./load.ts";

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("config: defaults are valid and safe for an edge host", () => {
  const c = buildConfig({});
  assert.equal(c.server.host, "127.0.0.1");
  assert.equal(c.server.port, 8080);
  assert.deepEqual(c.kafka.brokers, ["127.0.0.1:19092"]);
  assert.deepEqual(c.topics.deny, ["__*", "_schemas", "connect-*"]);
  assert.equal(c.auth.anonymous, "loopback");
  assert.equal(c.server.slowConsumer.policy, "pause");
});

Deno.test("config: file < env < flags", () => {
  const file = { name: "c.yaml", text: "server:\n  port: 9000\n  maxConnections: 5\nlog:\n  level: debug\n" };
  const c = buildConfig({
    file,
    env: { EDGE_BRIDGE_SERVER_PORT: "9100", EDGE_BRIDGE_KAFKA_BROKERS: "a:1, b:2", PATH: "/bin" },
    sets: ["server.port=9200"],
  });
  assert.equal(c.server.port, 9200);
  assert.equal(c.server.maxConnections, 5);
  assert.equal(c.log.level, "debug");
  assert.deepEqual(c.kafka.brokers, ["a:1", "b:2"]);
});

Deno.test("config: JSON files work too", () => {
  const c = buildConfig({ file: { name: "c.json", text: '{"topics":{"clientPrefix":"kafka."}}' } });
  assert.equal(c.topics.clientPrefix, "kafka.");
});

Deno.test("config: errors name the key, the value, the source and what was expected", async (t) => {
  await t.step("bad env number", () => {
    const [p] = problemsOf(() => buildConfig({ env: { EDGE_BRIDGE_SERVER_PORT: "eighty" } }));
    assert.match(p, /^server\.port = "eighty" \(from env EDGE_BRIDGE_SERVER_PORT\): Expected number/);
  });
  await t.step("out of range in file", () => {
    const [p] = problemsOf(() => buildConfig({ file: { name: "c.yaml", text: "server:\n  port: 70000\n" } }));
    assert.match(
      p,
      /^server\.port = 70000 \(from file c\.yaml\): Number must be less than or equal to 65535/,
    );
  });
  await t.step("bad enum via flag", () => {
    const [p] = problemsOf(() => buildConfig({ sets: ["server.slowConsumer.policy=drop"] }));
    assert.match(p, /server\.slowConsumer\.policy = "drop" \(from flag\): .*'pause' \| 'disconnect'/);
  });
  await t.step("bad broker address", () => {
    const [p] = problemsOf(() => buildConfig({ env: { EDGE_BRIDGE_KAFKA_BROKERS: "localhost" } }));
    assert.match(
      p,
      /kafka\.brokers\.0 = "localhost" \(from env EDGE_BRIDGE_KAFKA_BROKERS\): must be host:port/,
    );
  });
  await t.step("unknown key in file", () => {
    const [p] = problemsOf(() => buildConfig({ file: { name: "c.yaml", text: "server:\n  prot: 1\n" } }));
    assert.equal(p, 'unknown key "server.prot" in c.yaml');
  });
  await t.step("unknown env var", () => {
    const [p] = problemsOf(() => buildConfig({ env: { EDGE_BRIDGE_SERVER_PROT: "1" } }));
    assert.match(p, /unknown environment variable EDGE_BRIDGE_SERVER_PROT="1"/);
  });
  await t.step("unknown --set key", () => {
    const [p] = problemsOf(() => buildConfig({ sets: ["nope=1"] }));
    assert.match(p, /unknown key "nope"/);
  });
  await t.step("invalid YAML", () => {
    const [p] = problemsOf(() => buildConfig({ file: { name: "c.yaml", text: "server: [" } }));
    assert.match(p, /config file c\.yaml is not valid YAML/);
  });
  await t.step("all problems at once", () => {
    const ps = problemsOf(() =>
      buildConfig({ env: { EDGE_BRIDGE_SERVER_PORT: "x", EDGE_BRIDGE_LOG_LEVEL: "loud" } })
    );
    assert.equal(ps.length, 2);
  });
});

Deno.test("config: every key has an env var name", () => {
  const envs = CONFIG_KEYS.map((k) => k.env);
  assert.ok(envs.includes("EDGE_BRIDGE_SERVER_SLOW_CONSUMER_MAX_BUFFERED_BYTES"));
  assert.ok(envs.includes("EDGE_BRIDGE_KAFKA_CONSUMER_GROUP_PREFIX"));
  assert.equal(new Set(envs).size, envs.length);
});

Deno.test("config: docs/configuration.md documents every key and its env var", async () => {
  const doc = await Deno.readTextFile(new URL("../../docs/configuration.md", import.meta.url));
  for (const k of CONFIG_KEYS) {
    assert.ok(
      doc.includes(`| \`${k.path}\` | \`${k.env}\` |`),
      `docs/configuration.md lacks a row for ${k.path}`,
    );
  }
});
