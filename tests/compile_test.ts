/**
 * `deno compile` embeds the whole module graph. The runtime it wraps (denort) is
 * downloaded from dl.deno.land, which CI cannot reach, so DENORT_BIN points at a
 * stand-in: the resulting file does not run, but compile still resolves and embeds
 * every module and prints the listing, which is what the first test checks.
 *
 * Where a real denort exists (DENORT_BIN names one), the second test builds with it and
 * runs the binary: version, check-config, and a publish round trip through Kafka. Its
 * output says plainly whether the binary ran.
 */
import assert from "node:assert/strict";
import { brokers, createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import { TestClient } from "./helpers/ws_client.ts";

const compileScript = new URL("../scripts/compile.sh", import.meta.url).pathname;

async function compile(denort: string, output: string, args: string[] = []) {
  const out = await new Deno.Command("bash", {
    args: [compileScript, ...args],
    env: { DENORT_BIN: denort, COMPILE_OUTPUT: output, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    text: new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr),
  };
}

Deno.test("compile: the module graph embeds into a single binary", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await compile("/bin/ls", `${dir}/edge-bridge`);
    const text = out.text;
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
    await runTheBinaryWhereItCan();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("compile: another target's graph embeds too; an unknown target is refused", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const arm = await compile("/bin/ls", `${dir}/edge-bridge-arm`, ["--target", "aarch64-unknown-linux-gnu"]);
    assert.equal(arm.code, 0, arm.text);
    assert.match(arm.text, /assets\.generated\.ts/);
    const bad = await compile("/bin/ls", `${dir}/x`, ["--target", "sparc-sun-solaris"]);
    assert.equal(bad.code, 2);
    assert.match(bad.text, /unknown target "sparc-sun-solaris"; one of: x86_64-unknown-linux-gnu/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A real denort, when the machine has one: a file that is not a stand-in like /bin/ls. */
function realDenort(): string | undefined {
  const d = Deno.env.get("DENORT_BIN");
  return d && !d.startsWith("/bin/") && !d.startsWith("/usr/bin/") ? d : undefined;
}

/**
 * Part of the graph test, not a test of its own (which would pass without checking anything
 * here): with a real denort it runs the binary; without one it says so.
 */
async function runTheBinaryWhereItCan(): Promise<void> {
  const denort = realDenort();
  if (!denort) {
    // Said plainly, every run: this machine cannot download denort, so nothing here ran the binary.
    console.log(
      "compile: the binary was NOT run: no denort here (dl.deno.land is unreachable). " +
        "Set DENORT_BIN=/path/to/denort to build a binary that runs and test it.",
    );
    return;
  }
  const dir = await Deno.makeTempDir();
  const bin = `${dir}/edge-bridge`;
  try {
    const built = await compile(denort, bin);
    assert.equal(built.code, 0, built.text);
    const run = async (args: string[]) => {
      const o = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
      return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
    };
    const version = await run(["version"]);
    assert.equal(version.code, 0, version.out);
    assert.match(
      version.out,
      new RegExp(`deno ${Deno.version.deno.replaceAll(".", "\\.")}, ${Deno.build.target}`),
    );
    const check = await run(["check-config", "--set", `kafka.brokers=${brokers()}`]);
    assert.equal(check.code, 0, check.out);
    const topic = uniqueTopic("compiled");
    await createTopics([{ name: topic, partitions: 1 }]);
    const child = new Deno.Command(bin, {
      args: ["serve", "--port", "0", "--set", `kafka.brokers=${brokers()}`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    try {
      let url = "";
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      for (let buf = ""; !url;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the binary exited before listening: ${buf}`);
        buf += value;
        url = /"url":"(ws:[^"]+)"/.exec(buf)?.[1] ?? "";
      }
      const c = await TestClient.connect(url);
      const ack = await c.publish(topic, "from the compiled binary");
      assert.equal(ack.op, "ack", JSON.stringify(ack));
      await c.close();
      const records = await kcatRead(topic, undefined, 1);
      assert.equal(records[0]?.payload, "from the compiled binary");
      reader.releaseLock();
      console.log(
        `compile: the binary RAN: ${version.out.trim()}; check-config passed; a publish round trip passed`,
      );
    } finally {
      child.kill("SIGTERM");
      await child.status;
      await child.stdout.cancel().catch(() => {});
      await child.stderr.cancel().catch(() => {});
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
