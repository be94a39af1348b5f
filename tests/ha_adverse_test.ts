/**
 * HA under adverse conditions, with real bridge processes, the real broker and links that
 * misbehave: a slow Kafka link, one that drops packets, a cut heartbeat link, a frozen live
 * with a group consumer, and a torn state file. kcat checks what Kafka holds.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { freePort, HaCluster } from "./helpers/ha.ts";
import { brokers, createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";
import { assertAckedInKafka, FailoverPublisher } from "./helpers/publisher.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { pairBehindLink } from "./helpers/udp_relay.ts";
import { until } from "./helpers/wait.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A broker of these tests' own, with listeners advertised at proxy ports: every connection of a
 * node behind a proxy goes through it (with the shared broker, only the bootstrap would). */
const OWN_BROKER_PORT = Number(Deno.env.get("HA_ADVERSE_KAFKA_PORT") ?? 19792);

Deno.test("ha adverse: slow and packet-dropping Kafka links", async (t) => {
  const proxyPorts = [freePort(), freePort(), freePort()];
  const broker = new OwnBroker(OWN_BROKER_PORT, proxyPorts);
  await broker.start();
  try {
    await t.step(
      "a new live whose Kafka link adds 1 s per round trip activates once, under one epoch, and serves",
      async () => {
        const topic = uniqueTopic("slow-activation");
        await createTopics([{ name: topic, partitions: 1 }], broker.address);
        const proxy = new TcpProxy(proxyPorts[0], broker.proxyTarget(0), 500); // 500 ms each way
        proxy.start();
        const ha = new HaCluster("heartbeat", [
          { name: "a", priority: 200, brokers: broker.address },
          {
            name: "b",
            priority: 100,
            brokers: `127.0.0.1:${proxyPorts[0]}`,
            set: [
              "kafka.connectionTimeoutMs=5000",
              "kafka.requestTimeoutMs=20000",
              "kafka.healthCheckIntervalMs=2000",
            ],
          },
        ], ["ha.allowFailback=false"]);
        try {
          await ha.start("a");
          await ha.waitRole("a", "live");
          await ha.start("b");
          await ha.waitRole("b", "backup", 60_000);
          await until(
            "b reaching Kafka through the slow link",
            async () =>
              /\nedge_bridge_kafka_up 1\n/.test(
                await (await fetch(`${ha.bridge("b").httpUrl}/metrics`)).text(),
              ),
            60_000,
          );
          const killedAt = performance.now();
          await ha.stop("a", "SIGKILL");
          await ha.waitRole("b", "live", 90_000);
          console.log(`slow activation: kill -> b live in ${(performance.now() - killedAt).toFixed(0)} ms`);
          await sleep(2000); // a stall misread would demote and promote again meanwhile
          const b = ha.transitions().filter((x) => x.node === "b" && x.to !== "undefined");
          assert.deepEqual(b.map((x) => x.to), ["backup", "activating", "live"], JSON.stringify(b));
          // While activating or live (a backup's stall under CI load proves nothing here).
          const stalls = ha.bridge("b").logs(/stalled/).filter((l) => l.role !== "backup");
          assert.deepEqual(stalls, [], "an activation is not a stall");
          const client = await ha.bridge("b").connect();
          const ack = await client.publish(topic, "through the slow link", { id: "slow" });
          assert.equal(ack.op, "ack", JSON.stringify(ack));
          assert.equal(
            ack.epoch,
            (await ha.readyz("b"))!.epoch,
            "served under the one epoch it activated with",
          );
          await client.close();
          const inKafka = await kcatRead(topic, broker.address);
          assert.deepEqual(inKafka.map((r) => r.payload), ["through the slow link"]);
        } finally {
          await ha.close();
          await proxy.cut();
        }
      },
    );

    for (const [i, mode] of (["heartbeat", "file-lock"] as const).entries()) {
      await t.step(
        `${mode}: a live stepping down over a Kafka link that drops packets is a backup by its deadline`,
        async () => {
          const topic = uniqueTopic(`blackhole-${mode}`);
          await createTopics([{ name: topic, partitions: 2 }], broker.address);
          const proxy = new TcpProxy(proxyPorts[1 + i], broker.proxyTarget(1 + i));
          proxy.start();
          const STEP_DOWN_MS = 2000;
          const ha = new HaCluster(mode, [
            {
              name: "a",
              priority: 200,
              brokers: `127.0.0.1:${proxyPorts[1 + i]}`,
              // kafkajs then holds a request on the dropped link for long: the step-down must not wait.
              set: ["kafka.requestTimeoutMs=30000"],
            },
            { name: "b", priority: 100, brokers: broker.address },
          ], ["ha.allowFailback=false", `ha.stepDownTimeoutMs=${STEP_DOWN_MS}`]);
          try {
            await ha.start("a");
            await ha.waitRole("a", "live");
            await ha.start("b");
            await ha.waitRole("b", "backup");
            await sleep(2000); // b must have reached Kafka for the loss timeout before a may hand over
            const pub = new FailoverPublisher([ha.url("a"), ha.url("b")], topic);
            pub.start();
            await sleep(1000);
            proxy.blackhole(); // what a has in flight now waits on Kafka for good
            await ha.waitRole("b", "live", 60_000);
            const trans = ha.transitions();
            const down = trans.find((x) => x.node === "a" && x.to === "draining");
            const backup = trans.find((x) =>
              x.node === "a" && x.to === "backup" && x.time >= (down?.time ?? "")
            );
            assert.ok(down && backup, JSON.stringify(trans));
            assert.match(down.reason, /Kafka unreachable/);
            const tookMs = Date.parse(backup.time) - Date.parse(down.time);
            console.log(
              `${mode} step-down over a blackholed link: ${tookMs} ms (deadline ${STEP_DOWN_MS} ms)`,
            );
            // The bound is the deadline's own (plus the scheduling of one timer), not a speed target.
            assert.ok(tookMs <= STEP_DOWN_MS + 1500, `a was draining for ${tookMs} ms`);
            assert.equal(
              ha.bridge("a").logs(/ran past its deadline/).length,
              1,
              "what waited on Kafka was abandoned, and logged",
            );
            proxy.heal();
            await sleep(1500);
            await pub.stop();
            assert.equal(pub.pending.size, 0, "every publish is answered once the new live serves");
            await assertAckedInKafka(topic, pub, broker.address);
            await ha.assertRoles({ a: "backup", b: "live" });
          } finally {
            await ha.close();
            await proxy.cut();
          }
        },
      );
    }
  } finally {
    await broker.stop();
  }
});

Deno.test("ha adverse: a heartbeat link cut for 30 s under a steady producer: one handover at most, no epoch on two nodes, nothing acked lost", async () => {
  const topic = uniqueTopic("cut-link");
  await createTopics([{ name: topic, partitions: 2 }]);
  const { ha, link } = await pairBehindLink();
  try {
    await ha.start("a");
    await ha.waitRole("a", "live");
    await ha.start("b");
    await ha.waitRole("b", "backup");
    const pub = new FailoverPublisher([ha.url("a"), ha.url("b")], topic);
    pub.start();
    await sleep(1000);
    const before = ha.transitions().length;
    link.cut();
    const roles: string[] = [];
    for (let i = 0; i < 30; i++) {
      await sleep(1000);
      roles.push(JSON.stringify(await ha.roles()));
    }
    link.heal();
    await sleep(2000);
    await pub.stop();
    const during = ha.transitions().slice(before);
    const activations = during.filter((t) => t.to === "live");
    console.log(
      `cut link 30 s: ${activations.length} activation(s) ${
        activations.map((t) => `${t.node}@${t.epoch}`)
      }; ` +
        `roles each second: ${[...new Set(roles)].join(" ")}`,
    );
    assert.ok(activations.length <= 1, `at most one handover: ${JSON.stringify(during)}`);
    assert.equal((await ha.lives()).length, 1, "one live once the link heals");
    assert.equal(pub.pending.size, 0);
    await assertAckedInKafka(topic, pub);
    // Each epoch was served by one node: the eb-node of every record written under it agrees.
    const nodesByEpoch = new Map<string, Set<string>>();
    for (const r of await kcatRead(topic)) {
      const epoch = r.headers["eb-epoch"];
      if (!nodesByEpoch.has(epoch)) nodesByEpoch.set(epoch, new Set());
      nodesByEpoch.get(epoch)!.add(r.headers["eb-node"]);
    }
    for (const [epoch, nodes] of nodesByEpoch) {
      assert.equal(nodes.size, 1, `epoch ${epoch} was served by ${[...nodes]}`);
    }
  } finally {
    await ha.close();
    await link.close();
  }
});

Deno.test("ha adverse: a frozen live (SIGSTOP) with a group consumer: after SIGCONT its commits are refused and it delivers nothing more", async () => {
  const topic = uniqueTopic("zombie-group");
  await createTopics([{ name: topic, partitions: 1 }]);
  const group = uniqueTopic("zg");
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
    // The group's session outlives the freeze: Kafka itself would still take the zombie's commit.
    "kafka.consumer.sessionTimeoutMs=30000",
    "kafka.requestTimeoutMs=40000",
  ]);
  const admin = new Kafka({ brokers: brokers().split(","), logLevel: logLevel.NOTHING }).admin();
  try {
    await ha.start("a");
    await ha.waitRole("a", "live");
    await ha.start("b");
    await ha.waitRole("b", "backup");
    const a = ha.bridge("a");
    const producer = await a.connect();
    for (let i = 0; i < 5; i++) {
      assert.equal((await producer.publish(topic, `m${i}`, { id: `p${i}` })).op, "ack");
    }
    const consumer = await a.connect();
    const { sub } = await consumer.subscribe(topic, { mode: "group", group, from: "earliest", credit: 100 });
    // Offsets of transactional records skip the commit markers: look for values, not offsets.
    await consumer.waitFor((f) => f.op === "message" && f.value === "m4", 30_000);
    const m2 = consumer.frames.find((f) => f.op === "message" && f.value === "m2")!;

    a.signal("SIGSTOP");
    await ha.waitRole("b", "live");
    const onB = await ha.bridge("b").connect();
    for (let i = 5; i < 10; i++) assert.equal((await onB.publish(topic, `m${i}`, { id: `q${i}` })).op, "ack");
    // Read by the zombie when it wakes, before any of its timers has run.
    consumer.send({ op: "commit", id: "zombie-commit", sub, partition: 0, offset: m2.offset });
    a.signal("SIGCONT");

    // Answered (refused), or the connection closed by the step-down before the frame was read (waitFor
    // then rejects: the step-down no longer waits for the group consumer, so the close can come first).
    const isAnswer = (f: Record<string, unknown>) => f.id === "zombie-commit";
    const answer = await Promise.race([
      consumer.waitFor(isAnswer, 15_000).catch((e) => {
        if (/connection closed/.test(String(e))) return undefined;
        throw e;
      }),
      consumer.closed.then(() => consumer.frames.find(isAnswer)),
    ]);
    assert.notEqual(answer?.op, "committed", `the zombie's commit was taken: ${JSON.stringify(answer)}`);
    // Refused as NOT_LIVE, or (if the step-down already ended the subscription) as unknown.
    if (answer) {
      assert.ok(["NOT_LIVE", "UNKNOWN_SUBSCRIPTION"].includes(String(answer.code)), JSON.stringify(answer));
    }
    await ha.waitRole("a", "backup");
    await consumer.closed;
    const after = new Set(["m5", "m6", "m7", "m8", "m9"]);
    const late = consumer.frames.filter((f) => f.op === "message" && after.has(String(f.value)));
    assert.deepEqual(late, [], "nothing written after the freeze was delivered by the zombie");
    await admin.connect();
    const groupId = (await admin.listGroups()).groups.map((g) => g.groupId).find((g) => g.endsWith(group));
    assert.ok(groupId, `the group ${group} is known to Kafka`);
    const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] }).then((r) =>
      r.map((t) => t.partitions)
    );
    assert.ok(
      offsets.every((p) => p.offset === "-1"),
      `the group's committed offsets did not move: ${JSON.stringify(offsets)}`,
    );
    await producer.close();
    await onB.close();
  } finally {
    await admin.disconnect();
    await ha.close();
  }
});

Deno.test("ha adverse: a torn state file stops the node with a clear error, never a restart at epoch 1", async () => {
  for (const mode of ["file-lock", "heartbeat"] as const) {
    // b is never started: heartbeat mode needs a peer to name.
    const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }]);
    try {
      const path = mode === "file-lock"
        ? `${ha.dir}/shared/state.json`
        : `${ha.dir}/data-a/epoch-${ha.pairId}-a.json`;
      await Deno.mkdir(path.replace(/\/[^/]*$/, ""), { recursive: true });
      await Deno.writeTextFile(path, '{"epoch": 1245216771, "no'); // cut off mid-write
      await assert.rejects(
        () => ha.start("a"),
        (e: Error) => {
          assert.match(e.message, /exited \(code [1-9]/);
          assert.match(e.message, /state\.json|epoch-/);
          assert.match(e.message, /unreadable/);
          return true;
        },
        `${mode}: a torn ${path} must stop the node`,
      );
    } finally {
      await ha.close();
    }
  }
});
