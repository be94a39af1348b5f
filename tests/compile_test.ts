/**
 * `deno compile` embeds the whole module graph. The runtime it wraps (denort) is
 * downloaded from dl.deno.land, which CI cannot reach, so DENORT_BIN points at a
 * stand-in: the resulting file does not run, but compile still resolves and embeds
 * every module and prints the listing, which is what this test checks.
 */
import assert from "node:assert/strict";

Deno.test("compile: the module graph embeds into a single binary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await new Deno.Command("bash", {
      args: [new URL("../scripts/compile.sh", import.meta.url).pathname],
      env: { DENORT_BIN: "/bin/ls", COMPILE_OUTPUT: `${dir}/edge-bridge`, NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, /main\.ts/);
    for (const pkg of ["kafkajs", "ws", "pino", "prom-client", "zod", "yaml"]) {
      assert.match(text, new RegExp(`[\\s─]${pkg}/\\d+\\.\\d+\\.\\d+`), `the listing embeds npm:${pkg}`);
    }
    assert.ok((await Deno.stat(`${dir}/edge-bridge`)).size > 1_000_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
