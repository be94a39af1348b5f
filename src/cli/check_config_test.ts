import assert from "node:assert/strict";
import { checkConfig } from "./check_config.ts";

Deno.test("check-config: prints the effective config with the SASL password redacted", async () => {
  const dir = await Deno.makeTempDir();
  const password = "s3cret-sasl-password";
  const printed: string[] = [];
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void printed.push(a.join(" "));
  console.error = () => {};
  try {
    const file = `${dir}/bridge.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({ kafka: { sasl: { mechanism: "scram-sha-512", username: "bridge", password } } }),
    );
    assert.equal(await checkConfig(["--config", file]), 0);
  } finally {
    console.log = log;
    console.error = error;
    await Deno.remove(dir, { recursive: true });
  }
  const out = printed.join("\n");
  assert.ok(!out.includes(password), "the password is not printed");
  const shown = JSON.parse(out);
  assert.equal(shown.kafka.sasl.password, "[redacted]");
  assert.equal(shown.kafka.sasl.username, "bridge");
});
