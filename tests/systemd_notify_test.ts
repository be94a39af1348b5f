/**
 * sd_notify from a real bridge process to a NOTIFY_SOCKET this test listens on, as systemd
 * would with Type=notify and WatchdogSec= (systemd is not PID 1 here, so the test plays it).
 */
import assert from "node:assert/strict";
import { BridgeProcess } from "./helpers/bridge.ts";
import { freePort } from "./helpers/ha.ts";
import { until } from "./helpers/wait.ts";

/** systemd's side: a socket file, or (`abstract`) an abstract address, which NOTIFY_SOCKET writes "@name". */
function fakeSystemd(abstract = false) {
  const dir = Deno.makeTempDirSync({ prefix: "edge-bridge-notify-" });
  const name = `edge-bridge-test-${crypto.randomUUID()}`;
  const path = abstract ? `@${name}` : `${dir}/notify`;
  const socket = Deno.listenDatagram({ transport: "unixpacket", path: abstract ? `\0${name}` : path });
  const received: { at: number; text: string }[] = [];
  const reading = (async () => {
    try {
      for (;;) {
        const [data] = await socket.receive();
        received.push({ at: performance.now(), text: new TextDecoder().decode(data) });
      }
    } catch { /* closed */ }
  })();
  return {
    path,
    received,
    texts: () => received.map((r) => r.text),
    async close() {
      socket.close();
      await reading;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

Deno.test("sd_notify: READY=1 once listening, WATCHDOG=1 at half the interval, STOPPING=1 when the drain begins", async () => {
  const systemd = fakeSystemd();
  const bridge = await BridgeProcess.start({ env: { NOTIFY_SOCKET: systemd.path, WATCHDOG_USEC: "400000" } });
  try {
    await until("READY=1", () => systemd.texts().some((t) => t.startsWith("READY=1")), 10_000);
    const ready = systemd.texts().find((t) => t.startsWith("READY=1"))!;
    assert.match(ready, /^READY=1\nSTATUS=live, epoch 0, ws:\/\/127\.0\.0\.1:\d+\/ws$/);
    await until(
      "3 watchdog pings",
      () => systemd.texts().filter((t) => t === "WATCHDOG=1").length >= 3,
      10_000,
    );
    const pings = systemd.received.filter((r) => r.text === "WATCHDOG=1").map((r) => r.at);
    const gaps = pings.slice(1).map((t, i) => t - pings[i]);
    // Half of 400 ms; a loaded machine may stretch a gap, but never shorten it much.
    assert.ok(gaps.every((g) => g > 150), `watchdog gaps ${gaps.map(Math.round)}`);
    assert.ok(gaps.some((g) => g < 300), `watchdog gaps ${gaps.map(Math.round)}`);
    assert.equal(await bridge.stop("SIGTERM"), 0);
    const texts = systemd.texts();
    const stopping = texts.findIndex((t) => t.startsWith("STOPPING=1"));
    assert.ok(stopping > 0, `STOPPING=1 was sent: ${JSON.stringify(texts.slice(-3))}`);
    assert.match(texts[stopping], /^STOPPING=1\nSTATUS=draining: /);
    assert.ok(!texts.slice(stopping + 1).includes("WATCHDOG=1"), "no watchdog pings after STOPPING=1");
    assert.equal(texts.filter((t) => t.startsWith("READY=1")).length, 1);
  } finally {
    await bridge.stop("SIGKILL").catch(() => {});
    await systemd.close();
  }
});

Deno.test("sd_notify: an abstract NOTIFY_SOCKET (@name) is reached, and the bridge leaves no socket file behind", async () => {
  const systemd = fakeSystemd(true);
  const files = () =>
    [...Deno.readDirSync(Deno.cwd())].map((e) => e.name).filter((n) => n.includes("notify"));
  const before = files();
  const bridge = await BridgeProcess.start({ env: { NOTIFY_SOCKET: systemd.path } });
  try {
    await until("READY=1", () => systemd.texts().some((t) => t.startsWith("READY=1")), 10_000);
    assert.deepEqual(files(), before, "nothing new in the bridge's working directory");
    assert.equal(await bridge.stop("SIGTERM"), 0);
  } finally {
    await bridge.stop("SIGKILL").catch(() => {});
    await systemd.close();
  }
});

Deno.test("sd_notify (HA): READY=1 as a backup, STATUS= with role and epoch on each change", async () => {
  const systemd = fakeSystemd();
  const dir = Deno.makeTempDirSync({ prefix: "edge-bridge-notify-ha-" });
  const port = freePort();
  const bridge = await BridgeProcess.start({
    port,
    env: { NOTIFY_SOCKET: systemd.path },
    set: [
      "ha.mode=file-lock",
      `ha.fileLock.dir=${dir}`,
      `ha.pairId=notify-${crypto.randomUUID().slice(0, 8)}`,
      `ha.advertisedUrl=ws://127.0.0.1:${port}/ws`,
    ],
  });
  try {
    await until("live STATUS", () => systemd.texts().some((t) => /STATUS=live, epoch [1-9]/.test(t)), 20_000);
    const texts = systemd.texts();
    assert.match(texts[0], /^READY=1\nSTATUS=(backup|live), epoch \d+/, "ready once serving its part");
    assert.equal(texts.filter((t) => t.startsWith("READY=1")).length, 1, "READY=1 once");
    assert.ok(texts.some((t) => /^STATUS=activating, epoch \d+/.test(t) || /^READY=1\nSTATUS=live/.test(t)));
    assert.ok(!texts.some((t) => t.includes("WATCHDOG")), "no watchdog without WATCHDOG_USEC");
    assert.equal(await bridge.stop("SIGTERM"), 0);
    assert.ok(systemd.texts().some((t) => t.startsWith("STOPPING=1")));
  } finally {
    await bridge.stop("SIGKILL").catch(() => {});
    await systemd.close();
    Deno.removeSync(dir, { recursive: true });
  }
});
