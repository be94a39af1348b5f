import assert from "node:assert/strict";
import { configSchema } from "../config/schema.ts";
import { createLogger } from "../observability/logger.ts";
import { BridgeMetrics } from "../observability/metrics.ts";
import { FileLockCoordinator } from "./file_lock.ts";
import { HaNode } from "./node.ts";
import { until } from "../../tests/helpers/wait.ts";

/** A file-lock node whose Kafka side always succeeds; its ticks are run by the test, not a loop. */
async function fileLockNode(
  dir: string,
  name: string,
  priority: number,
  fileLock: Record<string, number> = {},
  activationMs = 0,
) {
  const cfg = configSchema.parse({ ha: { mode: "file-lock", fileLock: { dir, ...fileLock } } }).ha;
  let epochs = 10;
  /**
   * The fake Kafka side: how long an activation takes (and, with a gate, that it also waits for
   * the test to open it), and whether the producer is usable.
   */
  const kafka: { activationMs: number; gate?: Promise<void>; active: boolean } = {
    activationMs,
    active: true,
  };
  const node = new HaNode(
    name,
    priority,
    `ws://${name}.test/ws`,
    "lock",
    {
      activate: () =>
        new Promise((r) =>
          setTimeout(async () => {
            await kafka.gate;
            kafka.active = true;
            r(++epochs);
          }, kafka.activationMs)
        ),
      drain: () => Promise.resolve(),
      deactivate: () => Promise.resolve(),
      abandon: () => [],
      dropProducer: () => {},
      isActive: () => kafka.active,
    },
    new BridgeMetrics(),
    createLogger("silent", name),
  );
  const coordinator = new FileLockCoordinator(cfg, node, { up: true }, createLogger("silent", name));
  await coordinator.start();
  const inside = coordinator as unknown as {
    tick(now: number): Promise<void>;
    nextTickMs(): number;
    onShutdown(): Promise<void>;
    onWatch(now: number): void;
    readonly transitioning: boolean;
  };
  return {
    cfg,
    node,
    kafka,
    tick: (now: number) => inside.tick(now),
    onWatch: (now: number) => inside.onWatch(now),
    /** A promote or demote, or what follows one, is still running. */
    busy: () => inside.transitioning,
    nextTickMs: () => inside.nextTickMs(),
    /** Steps down and lets go of the lock, as the end of run() does. */
    shutdown: () => inside.onShutdown(),
    /** Runs ticks (1 ms apart, within one poll) until the node has `role`. */
    async until(role: string, from: number) {
      for (let i = 0; i < 200 && node.role() !== role; i++) {
        await inside.tick(from + i);
        await new Promise((r) => setTimeout(r, 1));
      }
      assert.equal(node.role(), role);
    },
  };
}

/** Another process's hold on the lock: flock conflicts between two opens, even in one process. */
async function holdLock(dir: string): Promise<Deno.FsFile> {
  const f = await Deno.open(`${dir}/live.lock`, { read: true, write: true, create: true });
  if (await f.tryLock(true)) return f;
  f.close();
  throw new Error("the lock is held");
}

const readJson = async (path: string) => JSON.parse(await Deno.readTextFile(path));

/** Waits (briefly) until the JSON file at `path` has `field` = `value`: transitions finish beside the ticks. */
async function fileSays(path: string, field: string, value: unknown): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await readJson(path).catch(() => ({})))[field] === value) return;
    await new Promise((r) => setTimeout(r, 2));
  }
  assert.equal((await readJson(path))[field], value, `${path}: ${field}`);
}

const nodeFile = (node: string, role: string, seq: number) =>
  JSON.stringify({
    node,
    priority: 200,
    role,
    epoch: 11,
    kafkaUp: true,
    readyForMs: 60_000,
    url: `ws://${node}.test/ws`,
    seq,
  });

Deno.test("file-lock: a waiting backup probes the lock between polls, writing nothing, and takes it once free", async () => {
  const dir = await Deno.makeTempDir();
  const held = await holdLock(dir); // the live, a
  await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ epoch: 10, node: "a", status: "live" }));
  const b = await fileLockNode(dir, "b", 100);
  // Whole milliseconds: with a fractional t0, (t0 + pollMs) - t0 can come out a hair under pollMs,
  // and the "full poll" below ran as a probe (the check's flake in CI, since fixed here).
  const t0 = Math.trunc(performance.now());
  await b.tick(t0); // init -> backup
  assert.equal(b.node.role(), "backup");
  assert.equal(b.nextTickMs(), b.cfg.fileLock.probeMs, "a live holds the lock: probed from the start");
  await b.tick(t0 + b.cfg.fileLock.pollMs); // a full poll: the lock is held
  assert.equal(b.nextTickMs(), b.cfg.fileLock.probeMs, "a backup that would take the lock probes it");
  const seq = (await readJson(`${dir}/node-b.json`)).seq;
  await b.tick(t0 + b.cfg.fileLock.pollMs + 1); // within the poll interval: a probe only
  assert.equal((await readJson(`${dir}/node-b.json`)).seq, seq, "a probe writes no status");
  assert.equal(b.node.role(), "backup");

  held.close(); // a dies: the kernel lets go of its lock
  await b.until("live", t0 + b.cfg.fileLock.pollMs + 2); // within the interval: the probe found it free
  await fileSays(`${dir}/state.json`, "node", "b");
  await fileSays(`${dir}/node-b.json`, "role", "live"); // at once, not at the next poll
  await b.shutdown();
  (await holdLock(dir)).close(); // shutdown let go of the lock (unlocked, then closed)
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: after handing over, the cooldown ends once the state file names the new live", async () => {
  const dir = await Deno.makeTempDir();
  const b = await fileLockNode(dir, "b", 100);
  const t0 = Math.trunc(performance.now()); // whole ms, as above
  await b.tick(t0);
  await b.until("live", t0 + 1);
  await fileSays(`${dir}/state.json`, "status", "live");
  // a returns with the higher priority, a healthy backup for longer than the failback hold-down.
  await Deno.writeTextFile(`${dir}/node-a.json`, nodeFile("a", "backup", 1));
  await b.until("backup", t0 + 300); // failback: b hands over and lets go of the lock
  assert.equal((await readJson(`${dir}/state.json`)).status, "failing-back");

  // a takes the lock and says so, in the state file and its own.
  let held: Deno.FsFile | undefined;
  for (let i = 0; i < 200 && !held; i++) held = await holdLock(dir).catch(() => undefined);
  await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ epoch: 12, node: "a", status: "live" }));
  await Deno.writeTextFile(`${dir}/node-a.json`, nodeFile("a", "live", 2));
  await b.tick(t0 + 600); // a full poll (past the interval), well inside the 4-poll cooldown
  assert.equal(b.nextTickMs(), b.cfg.fileLock.probeMs, "b waits for the lock again, probing it");

  held!.close(); // a dies
  await b.until("live", t0 + 601);
  await fileSays(`${dir}/state.json`, "node", "b");
  await fileSays(`${dir}/node-b.json`, "role", "live");
  await b.shutdown();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: the watch does not step a new live down while it writes the state file", async () => {
  const dir = await Deno.makeTempDir();
  // An activation longer than the watch's limit (3 × verifyMs): the watch must count from the
  // moment the node became live, not from when it took the lock, nor from never.
  const b = await fileLockNode(dir, "b", 100, { pollMs: 50, verifyMs: 100 }, 400);
  // The watch runs on a timer of its own, so it can come while the promotion writes state.json
  // (as it did, under CI load, in the flake this test covers): here it does, every time.
  const rename = Deno.rename;
  let watchedDuringWrite = false;
  Deno.rename = async (from, to) => {
    if (String(to).endsWith("/state.json") && b.node.heldRole === "live" && !watchedDuringWrite) {
      watchedDuringWrite = true;
      await new Promise((r) => setTimeout(r, 0)); // a timer's turn, as the watch's
      b.onWatch(performance.now());
    }
    return rename(from, to);
  };
  try {
    const t0 = Math.trunc(performance.now()); // whole ms, as above
    await b.tick(t0); // init -> backup
    await b.tick(t0 + 1); // takes the lock and begins the activation
    const live = Promise.withResolvers<void>();
    b.node.onRoleChange = (role) => role === "live" && live.resolve();
    await live.promise;
    await fileSays(`${dir}/state.json`, "status", "live");
  } finally {
    Deno.rename = rename;
  }
  assert.ok(watchedDuringWrite);
  assert.equal(b.node.steppingDown, false, "the watch counts from the moment the node became live");
  assert.equal(b.node.role(), "live");
  await b.shutdown();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: a node whose claim was taken while it activated steps down rather than call itself live", async () => {
  const dir = await Deno.makeTempDir();
  const b = await fileLockNode(dir, "b", 100, {}, 300);
  const t0 = Math.trunc(performance.now()); // whole ms, as above
  await b.tick(t0); // init -> backup
  await b.tick(t0 + 1); // takes the lock and begins the activation
  assert.equal(b.node.role(), "activating");
  // Meanwhile another node took the lock (on NFS: this one stalled past its lease) and says so.
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({ epoch: 10, node: "a", status: "activating" }),
  );
  const roles: string[] = [];
  b.node.onRoleChange = (role) => void roles.push(role);
  await until("b back to backup", () => b.node.heldRole === "backup");
  assert.deepEqual(roles, ["live", "draining", "backup"]);
  assert.equal((await readJson(`${dir}/state.json`)).node, "a", "the other node's claim is not overwritten");
  await b.shutdown();
  await Deno.remove(dir, { recursive: true });
});

/** Node b, live (its state file says so), with these fileLock options. */
async function liveNode(dir: string, fileLock: Record<string, number> = {}) {
  const b = await fileLockNode(dir, "b", 100, fileLock);
  const t0 = Math.trunc(performance.now()); // whole ms, as above
  await b.tick(t0);
  await b.until("live", t0 + 1);
  await fileSays(`${dir}/state.json`, "status", "live");
  return b;
}

/** verifyMs at its minimum (100 ms): the watch's limit is 300 ms. */
const FAST = { pollMs: 50, verifyMs: 100 };

/** The producer needs a fresh epoch, and Kafka takes `ms` (and `gate`) to give it: b re-activates. */
function renewSlowly(
  b: Awaited<ReturnType<typeof fileLockNode>>,
  ms: number,
  gate?: Promise<void>,
): Promise<void> {
  b.kafka.active = false;
  b.kafka.activationMs = ms;
  b.kafka.gate = gate;
  return b.node.reactivate();
}

/** Runs the loop's ticks (and the watch, unless left out) every 20 ms, as run() does, while `go` holds. */
async function driveWhile(
  b: Awaited<ReturnType<typeof fileLockNode>>,
  go: () => boolean,
  watch = true,
): Promise<void> {
  while (go()) {
    await b.tick(performance.now());
    if (watch) b.onWatch(performance.now());
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("file-lock: a live taking a fresh producer epoch from a slow Kafka keeps verifying its lock", async () => {
  const dir = await Deno.makeTempDir();
  // verifyMs 1 s: the watch steps down after 3 s without a verify. Kafka takes 3.5 s to answer, so
  // b must verify during the renewal; a CPU-starved poll loop would need a 2 s gap to fail it.
  const b = await liveNode(dir, { pollMs: 50, verifyMs: 1_000 });
  const renewing = renewSlowly(b, 3_500);
  const started = performance.now();
  await driveWhile(b, () => performance.now() - started < 3_300);
  assert.equal(b.node.steppingDown, false, "the lock was verified while Kafka was slow");
  await renewing;
  assert.equal(b.node.role(), "live");
  assert.equal(b.node.epoch(), 12, "re-activated under a fresh epoch");
  await b.shutdown();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: a live whose claim was taken while it renewed its producer steps down, leaving state.json alone", async () => {
  const dir = await Deno.makeTempDir();
  const b = await liveNode(dir, FAST);
  // Kafka answers only once b has asked to step down: its verifies during the renewal must see it.
  const kafkaAnswers = Promise.withResolvers<void>();
  const renewing = renewSlowly(b, 0, kafkaAnswers.promise);
  // Another node took the claim meanwhile (on NFS: this one's lease ran out).
  await Deno.writeTextFile(
    `${dir}/state.json`,
    JSON.stringify({ epoch: 11, node: "a", status: "activating" }),
  );
  const roles: string[] = [];
  b.node.onRoleChange = (role) => void roles.push(role);
  const started = performance.now();
  // Until b is down: it would take a lock left free (the test holds it for a only after). The
  // polls alone: the watch would step b down too, but only after 3 × verifyMs, by when the
  // renewal may have written itself live over a's claim.
  await driveWhile(b, () => {
    if (b.node.steppingDown) kafkaAnswers.resolve();
    return b.node.heldRole !== "backup" && performance.now() - started < 5_000;
  }, false);
  kafkaAnswers.resolve(); // had b not noticed, the renewal ends here (and the check below fails)
  await renewing;
  assert.deepEqual(roles, ["draining", "backup"], "stepped down while Kafka was still answering");
  let aLock: Deno.FsFile | undefined; // a takes the lock b lets go of
  for (let i = 0; i < 200 && !aLock; i++) {
    aLock = await holdLock(dir).catch(() => new Promise<undefined>((r) => setTimeout(() => r(undefined), 5)));
  }
  assert.ok(aLock, "b let go of the lock");
  assert.equal((await readJson(`${dir}/state.json`)).node, "a", "the other node's claim stands");
  await b.shutdown();
  assert.equal((await readJson(`${dir}/state.json`)).node, "a", "and b's shutdown writes nothing there");
  aLock.close();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: a new live stepped down during its lock check does not write itself live", async () => {
  const dir = await Deno.makeTempDir();
  const b = await fileLockNode(dir, "b", 100, {}, 100);
  b.node.onRoleChange = (role) => {
    if (role === "live") void b.node.demote("fenced by Kafka", "fenced"); // as the sink does when fenced
  };
  const t0 = Math.trunc(performance.now()); // whole ms, as above
  await b.tick(t0);
  await b.tick(t0 + 1);
  await until("b backup", () => b.node.heldRole === "backup");
  await until("the promotion's follow-up ended", () => !b.busy());
  assert.equal((await readJson(`${dir}/state.json`)).status, "activating", "never written live");
  await b.shutdown();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file-lock: a live whose claim is gone at shutdown does not mark the state paused", async () => {
  const dir = await Deno.makeTempDir();
  const b = await liveNode(dir);
  await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ epoch: 12, node: "a", status: "live" }));
  await b.shutdown();
  assert.deepEqual(await readJson(`${dir}/state.json`), { epoch: 12, node: "a", status: "live" });
  await Deno.remove(dir, { recursive: true });
});
