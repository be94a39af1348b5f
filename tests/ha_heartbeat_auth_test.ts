/**
 * Authenticated heartbeats against real bridge processes: forged, malformed, replayed and
 * off-address beats are ignored, and the pair keeps its roles. Each kind is shown to have reached
 * the nodes (their rejection counters), so the test cannot pass by the beats getting lost.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";
import { type Beat, BEAT_VERSION, decodeBeat, encodeBeat } from "../src/ha/beat.ts";
import { freePort, HaCluster } from "./helpers/ha.ts";
import { UdpRelay } from "./helpers/udp_relay.ts";

async function rejected(ha: HaCluster, node: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${ha.bridge(node).httpUrl}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^edge_bridge_ha_heartbeats_rejected_total\{reason="(\w+)"\} (\d+)/gm)) {
    out[m[1]] = Number(m[2]);
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function udpSocket(address: string): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  return new Promise((r) => s.bind(0, address, () => r(s)));
}

Deno.test("ha heartbeat auth: forged, malformed, off-address and replayed beats are ignored; the pair keeps its roles", async () => {
  let relay: UdpRelay | undefined;
  const ha = new HaCluster("heartbeat", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
    "ha.allowFailback=false",
  ], (from, _to, toPort) => {
    if (from !== "a") return toPort;
    relay ??= new UdpRelay(freePort(), toPort); // a -> b through a relay that records a's beats
    return relay.listenPort;
  });
  const local = await udpSocket("127.0.0.1");
  const foreign = await udpSocket("127.0.0.2"); // loopback, but not a configured peer's address
  const key = new TextEncoder().encode(Deno.readTextFileSync(ha.keyFile).trim());
  const wrongKey = new TextEncoder().encode("w".repeat(48));
  const send = (s: dgram.Socket, data: Uint8Array, port: number) =>
    new Promise<void>((r) => s.send(data, port, "127.0.0.1", () => r()));
  const signed = (body: unknown) => {
    const b = Buffer.from(JSON.stringify(body));
    return Buffer.concat([b, Buffer.from("\n" + createHmac("sha256", key).update(b).digest("base64url"))]);
  };
  try {
    ha.peerPort("a", "b", ha.hbPort("b"));
    await relay!.start();
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    await ha.waitRole("b", "backup");
    const epochA = (await ha.readyz("a"))!.epoch;

    // Record a's genuine beats for a second, to replay them later.
    relay!.recording = true;
    await new Promise((r) => setTimeout(r, 1000));
    relay!.recording = false;
    assert.ok(relay!.recorded.length >= 2, `recorded ${relay!.recorded.length} beats`);

    const lie = (over: Partial<Beat> = {}): Beat => ({
      v: BEAT_VERSION,
      pair: ha.pairId,
      incarnation: Number.MAX_SAFE_INTEGER,
      seq: 1,
      node: "evil",
      priority: 1000,
      role: "live",
      epoch: epochA + 1_000_000, // above the real one (epochs come from Kafka), so taking it would show
      kafkaUp: true,
      readyForMs: 0,
      url: "ws://attacker.example/ws",
      paused: true,
      ...over,
    });
    let seq = 0;
    const attacks: [dgram.Socket, () => Uint8Array][] = [
      [local, () => encodeBeat(lie({ seq: ++seq }), wrongKey)], // forged: another key
      // unsigned, posing as a: the JSON and "-" where the HMAC goes (what a node without a key sent)
      [local, () => new TextEncoder().encode(JSON.stringify(lie({ node: "a", seq: ++seq })) + "\n-")],
      [local, () => new TextEncoder().encode(JSON.stringify({ ...lie(), v: 1, seq: undefined }))], // old format
      [local, () => signed({ ...lie(), url: "ws://" + "ü".repeat(300) })], // signed but malformed
      [local, () => signed({ ...lie(), epoch: -1, seq: ++seq })],
      [local, () => crypto.getRandomValues(new Uint8Array(200))],
      [local, () => new Uint8Array(5000)],
      [foreign, () => encodeBeat(lie({ seq: ++seq }), key)], // valid, but not from a peer's address
    ];
    const attack = async () => {
      for (const [socket, make] of attacks) {
        for (const node of ["a", "b"]) await send(socket, make(), ha.hbPort(node));
      }
    };
    const until = performance.now() + 2500; // over three dead intervals
    while (performance.now() < until) {
      await attack();
      await new Promise((r) => setTimeout(r, 50));
    }
    await ha.assertRoles({ a: "live", b: "backup" });
    assert.equal((await ha.readyz("a"))!.epoch, epochA, "a's epoch is its own");
    assert.equal((await ha.readyz("b"))!.epoch, epochA, "b took no epoch from a forged beat");
    for (const node of ["a", "b"]) {
      const r = await rejected(ha, node);
      console.log(`${node} rejected: ${JSON.stringify(r)}`);
      for (const reason of ["bad_signature", "unsigned", "bad_field", "too_large", "not_a_peer"]) {
        assert.ok((r[reason] ?? 0) > 0, `${node} judged ${reason} beats: ${JSON.stringify(r)}`);
      }
    }

    // a dies. Its recorded beats ("live", fresh-looking) are replayed to b, with the forged "paused"
    // ones: were any believed, b would wait for a forever. b takes over all the same.
    await ha.stop("a", "SIGKILL");
    let replaying = true;
    const replay = (async () => {
      while (replaying) {
        for (const beat of relay!.recorded) await send(local, beat, ha.hbPort("b"));
        await attack();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    try {
      await ha.waitRole("b", "live", 20_000);
    } finally {
      replaying = false;
      await replay;
    }
    const r = await rejected(ha, "b");
    assert.ok((r.replayed ?? 0) > 0, `b judged replayed beats: ${JSON.stringify(r)}`);
    await ha.assertRoles({ b: "live" });
  } finally {
    await ha.close();
    await relay?.close();
    local.close();
    foreign.close();
  }
});

Deno.test("ha heartbeat auth: a's beats from an older incarnation, replayed to a restarted b, change nothing", async () => {
  let relay: UdpRelay | undefined;
  const ha = new HaCluster(
    "heartbeat",
    [
      { name: "a", priority: 200, set: ["ha.failoverOnShutdown=false"] }, // its stop says "paused"
      { name: "b", priority: 100 },
    ],
    [],
    (from, _to, toPort) => {
      if (from !== "a") return toPort;
      relay ??= new UdpRelay(freePort(), toPort); // a -> b through a relay that records a's beats
      return relay.listenPort;
    },
  );
  const local = await udpSocket("127.0.0.1"); // a configured peer's address, as a spoofed source would be
  const key = new TextEncoder().encode(Deno.readTextFileSync(ha.keyFile).trim());
  const send = (data: Uint8Array, port: number) =>
    new Promise<void>((r) => local.send(data, port, "127.0.0.1", () => r()));
  const incarnationFile = `${ha.dir}/data-b/incarnation-${ha.pairId}-b.json`;
  try {
    ha.peerPort("a", "b", ha.hbPort("b"));
    await relay!.start();
    await Promise.all([ha.start("a"), ha.start("b")]);
    await ha.waitRole("a", "live");
    await ha.waitRole("b", "backup");

    // Record one whole incarnation of a: live, then stopped without failover ("paused").
    relay!.recording = true;
    await sleep(1000);
    await ha.stop("a");
    relay!.recording = false;
    const old = relay!.recorded.splice(0);
    const oldBeats = old.map((d) => decodeBeat(d, key, ha.pairId)).flatMap((d) => d.ok ? [d.beat] : []);
    assert.equal(oldBeats.length, old.length, "a's recorded beats are genuine");
    assert.ok(oldBeats.some((b) => b.role === "live" && !b.paused), "recorded a live a");
    assert.ok(oldBeats.some((b) => b.role === "stopped" && b.paused), "recorded a paused a");
    // b waits for the paused a, well past the dead interval: what failoverOnShutdown: false promises.
    await sleep(2500);
    await ha.assertRoles({ b: "backup" });

    // a returns: a higher incarnation, which b hears and remembers.
    await ha.start("a");
    await ha.waitRole("a", "live");
    await ha.waitRole("b", "backup");
    const epochA = (await ha.readyz("a"))!.epoch;
    const oldIncarnation = oldBeats[0].incarnation;
    assert.ok(JSON.parse(Deno.readTextFileSync(incarnationFile)).peers.a > oldIncarnation, "b remembers a");

    /** Replays the old incarnation's beats to b, from a's address, until stopped. */
    const replaying = () => {
      let on = true;
      const done = (async () => {
        while (on) {
          for (const d of old) await send(d, ha.hbPort("b"));
          await sleep(20);
        }
      })();
      return async () => {
        on = false;
        await done;
      };
    };
    const restartB = async (forget: boolean) => {
      await ha.stop("b");
      if (forget) Deno.removeSync(incarnationFile);
      await ha.start("b");
      await ha.waitRole("b", "backup");
    };
    /** Over three dead intervals: a b that lost a would have taken over by then. */
    const assertPairHolds = async (round: string) => {
      await sleep(2500);
      await ha.assertRoles({ a: "live", b: "backup" });
      assert.equal((await ha.readyz("b"))!.live, ha.url("a"), `${round}: b hears a as live`);
      assert.equal((await ha.readyz("a"))!.epoch, epochA, `${round}: no new activation`);
      const r = await rejected(ha, "b");
      console.log(`${round}: b rejected ${JSON.stringify(r)}`);
      assert.ok((r.replayed ?? 0) > 0, `${round}: the replayed beats reached b`);
    };

    // 1. The review's case: b restarts and hears a's current incarnation; then the old one is
    //    replayed. (A random boot id let it displace the current one: b then refused a's genuine
    //    beats and took over.)
    await restartB(true);
    let stop = replaying();
    await assertPairHolds("old incarnation after b heard a");
    await stop();

    // 2. The old beats are there from the moment b opens its socket, before any genuine beat.
    //    b remembered a's incarnation across its restart: refused from the first.
    stop = replaying();
    await restartB(false);
    await assertPairHolds("old incarnation first, b remembers a");
    await stop();

    // 3. The same with b's memory lost: the old incarnation may be taken first, until a's next beat
    //    (a higher incarnation) displaces it, within b's listening time.
    stop = replaying();
    await restartB(true);
    await assertPairHolds("old incarnation first, b forgot a");

    // And a replayed "paused" does not hold failover back: a dies, b takes over while the old
    // incarnation's beats (live, then paused) keep coming.
    try {
      await ha.stop("a", "SIGKILL");
      await ha.waitRole("b", "live", 20_000);
    } catch (e) {
      // Why b held back (a replayed beat believed, Kafka unreachable, ...): its last log lines.
      console.log(`b's last log lines:\n${ha.bridge("b").lines.slice(-30).join("\n")}`);
      throw e;
    } finally {
      await stop();
    }
    await ha.assertRoles({ b: "live" });
  } finally {
    await ha.close();
    await relay?.close();
    local.close();
  }
});
