import assert from "node:assert/strict";
import { SystemdNotifier } from "./notify.ts";

/**
 * A NOTIFY_SOCKET of the test's own, as systemd would listen on it: a file, or (`abstract`) an
 * abstract address, which NOTIFY_SOCKET writes as "@name" and the kernel knows as "\0name".
 */
function fakeSystemd(abstract = false) {
  const dir = Deno.makeTempDirSync();
  const name = `edge-bridge-test-${crypto.randomUUID()}`;
  const path = abstract ? `@${name}` : `${dir}/notify`;
  const socket = Deno.listenDatagram({ transport: "unixpacket", path: abstract ? `\0${name}` : path });
  const received: string[] = [];
  const reading = (async () => {
    try {
      for (;;) {
        const [data] = await socket.receive();
        received.push(new TextDecoder().decode(data));
      }
    } catch { /* closed */ }
  })();
  return {
    path,
    received,
    async close() {
      socket.close();
      await reading;
      Deno.removeSync(dir, { recursive: true });
    },
  };
}

async function until(pred: () => boolean, ms = 2_000): Promise<void> {
  const end = performance.now() + ms;
  while (!pred()) {
    if (performance.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("sd_notify: READY once, STATUS on one line, STOPPING at the drain, to a real unix socket", async () => {
  const systemd = fakeSystemd();
  const n = SystemdNotifier.fromEnv((k) => ({ NOTIFY_SOCKET: systemd.path } as Record<string, string>)[k])!;
  try {
    n.ready("backup, epoch 0");
    n.ready("live, epoch 1");
    n.status("draining\nfor a handover");
    n.stopping("stopping");
    await until(() => systemd.received.length === 4);
    assert.deepEqual(systemd.received, [
      "READY=1\nSTATUS=backup, epoch 0",
      "STATUS=live, epoch 1",
      "STATUS=draining for a handover",
      "STOPPING=1\nSTATUS=stopping",
    ]);
  } finally {
    await n.close();
    await systemd.close();
  }
});

Deno.test("sd_notify: an abstract NOTIFY_SOCKET (@name) is reached, and no socket file is left in the working directory", async () => {
  const cwd = Deno.makeTempDirSync();
  const before = Deno.cwd();
  Deno.chdir(cwd); // a relative bind would land here
  const systemd = fakeSystemd(true);
  const n = SystemdNotifier.fromEnv((k) => ({ NOTIFY_SOCKET: systemd.path } as Record<string, string>)[k])!;
  try {
    n.ready("live, epoch 2");
    await until(() => systemd.received.length === 1);
    assert.deepEqual(systemd.received, ["READY=1\nSTATUS=live, epoch 2"]);
    assert.deepEqual([...Deno.readDirSync(cwd)].map((e) => e.name), [], "nothing in the working directory");
  } finally {
    Deno.chdir(before);
    await n.close();
    await systemd.close();
    Deno.removeSync(cwd, { recursive: true });
  }
});

Deno.test("sd_notify: WATCHDOG=1 at half of WATCHDOG_USEC, only for our own pid", async () => {
  const systemd = fakeSystemd();
  const env = (pid?: string) => (k: string) =>
    ({ NOTIFY_SOCKET: systemd.path, WATCHDOG_USEC: "40000", WATCHDOG_PID: pid } as Record<string, string>)[k];
  const other = SystemdNotifier.fromEnv(env(String(Deno.pid + 1)))!;
  assert.equal(other.watchdogUsec, undefined, "another pid's watchdog is not ours to feed");
  await other.close();
  const n = SystemdNotifier.fromEnv(env(String(Deno.pid)))!;
  try {
    assert.equal(n.watchdogUsec, 40_000);
    const t0 = performance.now();
    n.startWatchdog();
    await until(() => systemd.received.filter((m) => m === "WATCHDOG=1").length >= 4);
    // Four pings at a 20 ms period take at least 60 ms (the first is sent at once).
    assert.ok(performance.now() - t0 >= 55);
    n.stopping("bye");
    await until(() => systemd.received.at(-1) === "STOPPING=1\nSTATUS=bye");
    const count = systemd.received.length;
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(systemd.received.length, count, "no watchdog pings after STOPPING");
  } finally {
    await n.close();
    await systemd.close();
  }
});

Deno.test("sd_notify: no NOTIFY_SOCKET, no notifier; a relative one is refused clearly, a vsock one said and ignored", () => {
  assert.equal(SystemdNotifier.fromEnv(() => undefined), undefined);
  assert.throws(
    () => SystemdNotifier.fromEnv((k) => (k === "NOTIFY_SOCKET" ? "notify.sock" : undefined)),
    /NOTIFY_SOCKET must be an absolute path or an abstract address/,
  );
  const said: string[] = [];
  const vsock = SystemdNotifier.fromEnv((k) => (k === "NOTIFY_SOCKET" ? "vsock:2:1234" : undefined), {
    onError: (message) => void said.push(message),
  });
  assert.equal(vsock, undefined, "a vsock address: the service runs without notifications");
  assert.match(said.join(), /vsock address \(vsock:2:1234\), which this build cannot reach/);
  for (const kind of ["vsock-stream", "vsock-dgram", "vsock-seqpacket"]) {
    assert.equal(
      SystemdNotifier.fromEnv((k) => (k === "NOTIFY_SOCKET" ? `${kind}:2:1234` : undefined)),
      undefined,
    );
  }
});
