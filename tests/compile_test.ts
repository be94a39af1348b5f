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
    // The console and the SDK bundle are a module of the graph (src/console/assets.ts says why), so the
    // binary serves them with no file beside it: the listing must carry the whole generated module.
    const generated = /assets\.generated\.ts \(([\d.]+)(B|KB|MB)\)/.exec(text);
    assert.ok(generated, "the listing embeds src/console/assets.generated.ts");
    const embedded = Number(generated[1]) *
      { B: 1, KB: 1000, MB: 1_000_000 }[generated[2] as "B" | "KB" | "MB"];
    const onDisk = (await Deno.stat(new URL("../src/console/assets.generated.ts", import.meta.url))).size;
    assert.ok(embedded >= onDisk, `assets.generated.ts is embedded whole (${embedded} >= ${onDisk} bytes)`);
    assert.ok((await Deno.stat(`${dir}/edge-bridge`)).size > 1_000_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
