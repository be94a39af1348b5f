import assert from "node:assert/strict";
import { configSchema } from "./schema.ts";
import { REDACTED, redactSecrets } from "./redact.ts";

Deno.test("redact: the SASL password and API key hashes are hidden; the rest, paths included, stays", () => {
  const password = "hunter2-kafka-password";
  const hash = `sha256:${"ab".repeat(32)}`;
  const config = configSchema.parse({
    kafka: { sasl: { mechanism: "plain", username: "bridge", password } },
    auth: {
      jwt: { secretFile: "/etc/eb/jwt.secret" },
      apiKeys: [{ id: "sensor", hash, publish: ["t"] }],
    },
  });
  const shown = redactSecrets(config);
  const text = JSON.stringify(shown);
  assert.ok(!text.includes(password), "no password");
  assert.ok(!text.includes("ab".repeat(32)), "no hash");
  assert.equal(shown.kafka.sasl.password, REDACTED);
  assert.equal(shown.auth.apiKeys[0].hash, `sha256:${REDACTED}`);
  assert.equal(shown.kafka.sasl.username, "bridge");
  assert.equal(shown.auth.jwt.secretFile, "/etc/eb/jwt.secret");
  assert.deepEqual(shown.auth.apiKeys[0].publish, ["t"]);
  assert.equal(config.kafka.sasl.password, password, "the config itself is left as it was");
  assert.equal(config.auth.apiKeys[0].hash, hash);
});

Deno.test("redact: a config without secrets is shown whole", () => {
  const config = configSchema.parse({
    kafka: { sasl: { mechanism: "plain", username: "u", passwordFile: "/p" } },
  });
  assert.deepEqual(redactSecrets(config), config);
});
