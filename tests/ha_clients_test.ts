/** The walkthrough's sample clients against a live/backup pair: they fail over and lose nothing acked. */
import assert from "node:assert/strict";
import { denoRunArgs } from "./helpers/bridge.ts";
import { HaCluster } from "./helpers/ha.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import { until } from "./helpers/wait.ts";

function spawnCli(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...denoRunArgs(), ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const read = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const parts = buf.split("\n");
      buf = parts.pop()!;
      lines.push(...parts);
    }
  })();
  const stderr = (async () => {
    for await (const _ of child.stderr) { /* drain */ }
  })();
  return {
    child,
    lines,
    done: async () => ({ status: await child.status, _: await Promise.all([read, stderr]) }),
  };
}

Deno.test("clients: produce and consume fail over to the backup, print 'Trying again...', and lose nothing acked", async () => {
  const topic = uniqueTopic("clients");
  await createTopics([{ name: topic, partitions: 2 }]);
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ]);
  try {
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    const urls = ["-u", ha.url("a"), "-u", ha.url("b")];
    const consumer = spawnCli([
      "consume",
      ...urls,
      "-t",
      topic,
      "-g",
      uniqueTopic("g"),
      "--from",
      "earliest",
      "-n",
      "30",
    ]);
    const producer = spawnCli(["produce", ...urls, "-t", topic, "--rate", "10", "--count", "30"]);
    await until("five acks", () => producer.lines.filter((l) => l.startsWith("acked")).length >= 5, 20_000);
    await ha.stop("a", "SIGKILL");
    const prod = await producer.done();
    assert.equal(prod.status.code, 0, producer.lines.join("\n"));
    const out = producer.lines;
    assert.ok(out.some((l) => l.startsWith("Trying again...")), "the producer says it is trying again");
    // Epochs come from Kafka (each activation's InitProducerId): b's is the newer, so the higher.
    const epochOf = (re: RegExp) => out.map((l) => re.exec(l)?.[1]).filter(Boolean).map(Number);
    const [epochA, epochB] = [/\(node a, epoch (\d+)\)/, /\(node b, epoch (\d+)\)/].map((re) =>
      epochOf(re)[0]
    );
    assert.ok(epochB > epochA, `reconnects to the backup, live at a newer epoch (a ${epochA}, b ${epochB})`);
    assert.ok(
      out.some((l) => l.startsWith("acked hello") && l.endsWith(`(epoch ${epochB})`)),
      "acks come from the new live",
    );
    const acked = new Set(out.filter((l) => l.startsWith("acked")).map((l) => l.split(" ")[2]));
    assert.equal(acked.size, 30);
    assert.match(
      out.at(-1)!,
      /^sent 30, acked 30, duplicates \d+, failed 0$/,
      "the tally: every message acked",
    );

    // Exactly-once across the failover: messages resent to the new live are written once.
    const inKafka = (await kcatRead(topic, undefined, 30)).map((r) => r.payload!);
    for (const n of acked) {
      assert.equal(inKafka.filter((v) => v === `hello ${n}`).length, 1, `acked hello ${n} is in Kafka once`);
    }
    assert.equal(inKafka.length, 30);

    const cons = await consumer.done();
    assert.equal(cons.status.code, 0);
    const printed = consumer.lines.filter((l) => l.startsWith(`${topic}/`));
    assert.ok(printed.length >= 30);
    assert.match(
      printed[0],
      new RegExp(`^${topic}/\\d+@\\d+ hello \\d+$`),
      "each message is printed with its position",
    );
    assert.ok(consumer.lines.some((l) => l.startsWith("Trying again...")));
    assert.equal(
      consumer.lines.at(-1),
      "received 30, duplicates 0, gaps 0",
      "nothing printed twice, nothing missed",
    );
    console.log(`producer: ${acked.size} acked across the failover; consumer printed ${printed.length}`);
  } finally {
    await ha.close();
  }
});
