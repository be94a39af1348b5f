/**
 * The scenarios both HA modes share, run once per mode against real processes:
 * failover after kill -9, failback, Kafka loss on the live, Kafka loss on both,
 * and a Kafka restart. Kafka links are cut per node through TCP proxies, as the
 * walkthrough does with toxiproxy; what reached Kafka is counted with kcat.
 */
import assert from "node:assert/strict";
import { freePort, HaCluster } from "./helpers/ha.ts";
import { createTopics, OwnBroker, uniqueTopic } from "./helpers/kafka.ts";
import { assertAckedInKafka, FailoverPublisher } from "./helpers/publisher.ts";
import { TcpProxy } from "./helpers/tcp_proxy.ts";
import { until } from "./helpers/wait.ts";
import { TestClient } from "./helpers/ws_client.ts";

const MODES = ["file-lock", "heartbeat"] as const;
const BROKER_PORT = Number(Deno.env.get("HA_KAFKA_PORT") ?? 19492);

for (const mode of MODES) {
  Deno.test(`ha ${mode}: failover after kill -9, failback with break-before-make, every ack in Kafka`, async () => {
    const topic = uniqueTopic(`${mode}-fo`);
    await createTopics([{ name: topic, partitions: 2 }]);
    const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }]);
    try {
      await ha.start("a");
      await ha.waitRole("a", "live");
      await ha.start("b");
      await ha.waitRole("b", "backup");
      // Soon the backup knows the live's URL: /readyz says 503 and names it, and clients are refused with it.
      let backup = await ha.readyz("b");
      for (let i = 0; i < 50 && !backup?.live; i++) {
        await new Promise((r) => setTimeout(r, 100));
        backup = await ha.readyz("b");
      }
      assert.equal(backup?.status, 503, "a backup is not ready");
      assert.equal(backup?.live, ha.url("a"), "a backup names the live");
      const refused = await TestClient.connect(ha.url("b"));
      assert.deepEqual([refused.frames[0].code, refused.frames[0].live], ["NOT_LIVE", ha.url("a")]);
      const close = await refused.closed;
      assert.deepEqual([close.code, close.reason], [4001, `live=${ha.url("a")}`]);

      const pub = new FailoverPublisher([ha.url("a"), ha.url("b")], topic);
      pub.start();
      await new Promise((r) => setTimeout(r, 1000));
      const killedAt = performance.now();
      await ha.stop("a", "SIGKILL");
      await ha.waitRole("b", "live");
      console.log(
        `${mode} failover (kill -9 -> backup live): ${(performance.now() - killedAt).toFixed(0)} ms`,
      );
      // A group subscriber on b makes its drain slow (leaving a Kafka group takes a while).
      const subscriber = await ha.bridge("b").connect();
      await subscriber.subscribe(topic, { mode: "group", group: uniqueTopic("g"), credit: 1000 });
      await new Promise((r) => setTimeout(r, 1000));

      const restartedAt = performance.now();
      await ha.start("a");
      await ha.waitRole("a", "live");
      const failbackMs = (performance.now() - restartedAt).toFixed(0);
      console.log(`${mode} failback (restart -> original live, incl. 1000 ms hold-down): ${failbackMs} ms`);
      await ha.waitRole("b", "backup");
      await new Promise((r) => setTimeout(r, 500));
      await pub.stop();

      assert.equal(pub.pending.size, 0, "every message was eventually acked");
      const recordAt = await assertAckedInKafka(topic, pub);
      assert.deepEqual(await ha.lives(), ["a"]);
      const perEpoch: Record<number, number> = {};
      for (const a of pub.acked.values()) perEpoch[a.epoch] = (perEpoch[a.epoch] ?? 0) + 1;
      console.log(`${mode} acks per epoch: ${JSON.stringify(perEpoch)}`);
      assert.ok(
        Object.keys(perEpoch).length >= 2,
        "acks came from the original live and after failover or failback",
      );
      // The epoch is in every ack and in the eb-epoch header of the record the ack names. Look the record
      // up by the ack's position, not by payload: a publish whose ack died with the killed live is resent
      // and written again (at-least-once), so an earlier copy from the old epoch may exist.
      for (const [id, ack] of pub.acked) {
        assert.equal(
          recordAt(ack.partition, ack.offset)?.headers["eb-epoch"],
          String(ack.epoch),
          `eb-epoch of ${id}`,
        );
      }

      // Break before make: b finished draining before a became live again, and sent its clients on.
      const t = ha.transitions();
      const bDown = t.find((x) => x.node === "b" && x.to === "draining");
      const bDrained = t.find((x) => x.node === "b" && x.to === "backup" && x.time >= (bDown?.time ?? ""));
      const aLive = t.filter((x) => x.node === "a" && x.to === "live").pop();
      assert.ok(
        bDrained && aLive && bDrained.time <= aLive.time,
        `b finished draining (${bDrained?.time}) before a went live (${aLive?.time})`,
      );
      assert.match(bDown!.reason, /failback to a/);
      assert.equal((await subscriber.closed).code, 4001, "b's clients were sent to the live");

      const metrics = await (await fetch(`${ha.bridge("a").httpUrl}/metrics`)).text();
      assert.match(metrics, /edge_bridge_ha_role\{role="live"\} 1/);
      // Each activation's epoch comes from Kafka (InitProducerId): the failback live's is the highest.
      const epochA = (await ha.readyz("a"))!.epoch;
      assert.match(metrics, new RegExp(`edge_bridge_ha_epoch ${epochA}\n`));
      const epochs = Object.keys(perEpoch).map(Number);
      assert.ok(epochs.every((e) => e > 0 && e <= epochA), `epochs ${epochs} and a's ${epochA}`);
      assert.match(metrics, /edge_bridge_ha_transitions_total\{from="activating",to="live"\} 1/);
    } finally {
      await ha.close();
    }
  });
}

for (const mode of MODES) {
  Deno.test(`ha ${mode}: SIGTERM on the live hands over at once`, async () => {
    const ha = new HaCluster(mode, [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
      "ha.allowFailback=false",
    ]);
    try {
      await ha.start("a");
      await ha.waitRole("a", "live");
      await ha.start("b");
      await ha.waitRole("b", "backup");
      const client = await ha.bridge("a").connect();
      const stoppedAt = performance.now();
      const stopping = ha.stop("a", "SIGTERM");
      await ha.waitRole("b", "live");
      console.log(
        `${mode} graceful handover (SIGTERM -> backup live): ${
          (performance.now() - stoppedAt).toFixed(0)
        } ms`,
      );
      assert.equal(await stopping, 0);
      assert.equal((await client.closed).code, 4001, "clients are told to go to the live");
      const promoted = ha.transitions().find((x) => x.node === "b" && x.to === "live");
      assert.match(
        promoted!.reason,
        mode === "heartbeat" ? /a stopped and handed over/ : /previous live a, failing-back/,
      );
    } finally {
      await ha.close();
    }
  });

  Deno.test(`ha ${mode}: a simultaneous cold start ends with exactly one live`, async () => {
    const ha = new HaCluster(mode, [{ name: "a", priority: 100 }, { name: "b", priority: 100 }]);
    try {
      await Promise.all([ha.start("a"), ha.start("b")]);
      const start = performance.now();
      while ((await ha.lives()).length === 0 && performance.now() - start < 30_000) {
        await new Promise((r) => setTimeout(r, 20));
      }
      for (let i = 0; i < 20; i++) {
        assert.equal((await ha.lives()).length, 1, `exactly one live: ${JSON.stringify(await ha.roles())}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await ha.close();
    }
  });
}

Deno.test("ha: Kafka loss hands over, both losing Kafka moves nobody, a Kafka restart causes no failover", async (t) => {
  const proxyPorts = [freePort(), freePort()];
  const broker = new OwnBroker(BROKER_PORT, proxyPorts);
  await broker.start();
  const proxies = proxyPorts.map((p, i) => new TcpProxy(p, broker.proxyTarget(i)));
  for (const p of proxies) p.start();
  try {
    for (const mode of MODES) {
      const topic = uniqueTopic(`kafka-loss-${mode}`);
      await createTopics([{ name: topic, partitions: 1 }], broker.address);
      const ha = new HaCluster(mode, [
        { name: "a", priority: 200, brokers: `127.0.0.1:${proxyPorts[0]}` },
        { name: "b", priority: 100, brokers: `127.0.0.1:${proxyPorts[1]}` },
      ]);
      try {
        await ha.start("a");
        await ha.waitRole("a", "live");
        await ha.start("b");
        await ha.waitRole("b", "backup");

        await t.step(
          `${mode}: the live that loses Kafka hands over to the backup that reaches it`,
          async () => {
            const pub = new FailoverPublisher([ha.url("a"), ha.url("b")], topic);
            pub.start();
            await new Promise((r) => setTimeout(r, 500));
            const cutAt = performance.now();
            await proxies[0].cut();
            try {
              await ha.waitRole("b", "live");
            } finally {
              proxies[0].restore();
            }
            console.log(
              `${mode} Kafka-loss handover (cut -> backup live, 1500 ms loss timeout): ${
                (performance.now() - cutAt).toFixed(0)
              } ms`,
            );
            const handover = ha.transitions().find((x) => x.node === "a" && x.to === "draining");
            assert.match(handover!.reason, /Kafka unreachable/);
            // a reaches Kafka again: failback after the hold-down.
            await ha.waitRole("a", "live");
            await ha.waitRole("b", "backup");
            await pub.stop();
            assert.equal(pub.pending.size, 0);
            await assertAckedInKafka(topic, pub, broker.address);
          },
        );

        await t.step(`${mode}: when both lose Kafka, nobody moves`, async () => {
          // Clients keep publishing meanwhile: their failures must not move the live either.
          const pub = new FailoverPublisher([ha.url("a"), ha.url("b")], topic);
          const before = ha.transitions().length;
          pub.start();
          await Promise.all(proxies.map((p) => p.cut()));
          try {
            for (let i = 0; i < 40; i++) {
              await ha.assertRoles({ a: "live", b: "backup" });
              await new Promise((r) => setTimeout(r, 100));
            }
          } finally {
            for (const p of proxies) p.restore();
          }
          await pub.stop();
          assert.equal(pub.pending.size, 0, "once Kafka is back every message is acked");
          const codes = new Set(pub.nacks.map((n) => n.code));
          console.log(`${mode} both cut: nacks ${JSON.stringify([...codes])}`);
          for (const c of codes) {
            assert.ok(
              ["KAFKA_UNAVAILABLE", "KAFKA_TIMEOUT"].includes(c),
              `a Kafka outage is nacked as such, not ${c}`,
            );
          }
          assert.deepEqual(
            ha.transitions().slice(before).filter((x) => x.to === "fenced"),
            [],
            "a Kafka outage is not mistaken for fencing",
          );
          await assertAckedInKafka(topic, pub, broker.address);
        });

        await t.step(`${mode}: a Kafka restart causes no failover`, async () => {
          const before = ha.transitions().length;
          await broker.stop();
          await broker.start();
          for (let i = 0; i < 30; i++) {
            await ha.assertRoles({ a: "live" });
            await new Promise((r) => setTimeout(r, 100));
          }
          assert.deepEqual(ha.transitions().slice(before), [], "no role changed while Kafka restarted");
        });
      } finally {
        await ha.close();
      }
    }

    await t.step("flapping is damped: handovers beyond ha.maxHandoversPerMinute are held back", async () => {
      const topic = uniqueTopic("kafka-flap");
      await createTopics([{ name: topic, partitions: 1 }], broker.address);
      const ha = new HaCluster("heartbeat", [
        { name: "a", priority: 200, brokers: `127.0.0.1:${proxyPorts[0]}` },
        { name: "b", priority: 100, brokers: `127.0.0.1:${proxyPorts[1]}` },
      ], ["ha.maxHandoversPerMinute=1"]);
      try {
        await ha.start("a");
        await ha.waitRole("a", "live");
        await ha.start("b");
        await ha.waitRole("b", "backup");
        await proxies[0].cut(); // a's handover 1: Kafka loss
        try {
          await ha.waitRole("b", "live");
        } finally {
          proxies[0].restore();
        }
        await ha.waitRole("a", "live"); // failback (b's own handover)
        await proxies[0].cut(); // a's handover 2 within the minute: held back
        try {
          await until(
            "a to hold back its second handover",
            () => ha.bridge("a").logs(/handover held back/).length > 0,
            20_000,
          );
          for (let i = 0; i < 20; i++) {
            assert.deepEqual(await ha.lives(), ["a"], "a stays live");
            await new Promise((r) => setTimeout(r, 100));
          }
        } finally {
          proxies[0].restore();
        }
      } finally {
        await ha.close();
      }
    });
  } finally {
    for (const p of proxies) await p.cut();
    await broker.stop();
  }
});
