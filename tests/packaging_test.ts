/**
 * The packaging files, checked by the tools that read them for real (no Docker engine runs here):
 * hadolint on the Dockerfile, Docker Compose's own parser (compose-spec/compose-go) on the compose files,
 * `systemd-analyze verify` and `security` on the unit, actionlint on the release workflow, and
 * scripts/install.sh run twice into a scratch root. scripts/lint_packaging.sh installs every tool.
 * Each check is paired with a broken copy that the same tool must reject, so none can pass vacuously.
 */
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { BridgeProcess, denoRunArgs } from "./helpers/bridge.ts";

const root = new URL("../", import.meta.url).pathname;
const repo = (path: string) => `${root}${path}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd ?? root,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) } satisfies Run;
}

const show = (r: Run) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** The linters, installed (or found) by scripts/lint_packaging.sh, once per test run. */
let toolsOnce: Promise<Record<string, string>> | undefined;
function tools(): Promise<Record<string, string>> {
  toolsOnce ??= run("bash", [repo("scripts/lint_packaging.sh"), "install"]).then((r) => {
    assert.equal(r.code, 0, `scripts/lint_packaging.sh install failed:\n${show(r)}`);
    return Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split("=", 2) as [string, string]));
  });
  return toolsOnce;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "edge-bridge-packaging-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined and comments dropped. */
function dockerfileInstructions(text: string): Instruction[] {
  const joined = text.split("\n").filter((l) => !/^\s*#/.test(l)).join("\n").replace(/\\\n/g, " ");
  return joined.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
    const [op, ...rest] = l.split(/\s+/);
    return { op: op.toUpperCase(), args: rest.join(" ") };
  });
}

const dockerfile = () => Deno.readTextFile(repo("Dockerfile"));

Deno.test("Dockerfile: hadolint reports nothing, and does report a broken copy", async () => {
  const { hadolint } = await tools();
  const clean = await run(hadolint, ["--format", "json", repo("Dockerfile")]);
  const findings = JSON.parse(clean.stdout || "[]") as { code: string; line: number; message: string }[];
  assert.deepEqual(
    findings.map((f) => `line ${f.line}: ${f.code} ${f.message}`),
    [],
    `hadolint findings:\n${show(clean)}`,
  );
  assert.equal(clean.code, 0, show(clean));

  await withTempDir(async (dir) => {
    // An untagged base image and an unpinned apt-get install: both are findings hadolint must report.
    const broken = (await dockerfile()).replace("FROM debian:bookworm-slim", "FROM debian") +
      "\nRUN apt-get update && apt-get install -y curl\n";
    await Deno.writeTextFile(`${dir}/Dockerfile`, broken);
    const r = await run(hadolint, ["--format", "json", `${dir}/Dockerfile`]);
    const codes = (JSON.parse(r.stdout) as { code: string }[]).map((f) => f.code);
    assert.notEqual(r.code, 0, show(r));
    assert.ok(codes.includes("DL3006"), `untagged FROM reported: ${codes}`);
    assert.ok(codes.includes("DL3008"), `unpinned apt-get install reported: ${codes}`);
  });
});

Deno.test("Dockerfile: deno compile stage, small glibc runtime, non-root, healthcheck, volumes", async () => {
  const ins = dockerfileInstructions(await dockerfile());
  const froms = ins.filter((i) => i.op === "FROM").map((i) => i.args);
  assert.deepEqual(froms, ["denoland/deno:2.9.6 AS build", "debian:bookworm-slim"]);
  const buildStage = ins.slice(0, ins.findIndex((i, n) => n > 0 && i.op === "FROM"));
  assert.ok(
    buildStage.some((i) => i.op === "RUN" && i.args.includes("scripts/compile.sh")),
    "the build stage compiles with scripts/compile.sh (the documented flags)",
  );
  const runtime = ins.slice(ins.findIndex((i, n) => n > 0 && i.op === "FROM"));
  assert.ok(runtime.some((i) => i.op === "COPY" && i.args.startsWith("--from=build /out/edge-bridge ")));

  const user = runtime.filter((i) => i.op === "USER").at(-1)?.args;
  assert.ok(user, "the runtime stage sets USER");
  // USER ${UID}:${UID} takes the stage's ARG UID=<default>.
  const argUid = runtime.find((i) => i.op === "ARG" && i.args.startsWith("UID="))?.args.slice("UID=".length);
  const uid = user.split(":")[0].replace("${UID}", argUid ?? "");
  assert.ok(uid && /^\d+$/.test(uid) && Number(uid) > 0, `USER ${user} is a numeric non-root uid (${uid})`);

  const volumes = JSON.parse(runtime.find((i) => i.op === "VOLUME")!.args) as string[];
  assert.deepEqual(volumes, ["/var/lib/edge-bridge", "/var/lib/edge-bridge-shared"]);
  assert.deepEqual(runtime.filter((i) => i.op === "EXPOSE").map((i) => i.args), ["8080/tcp 7946/udp"]);
  assert.deepEqual(JSON.parse(runtime.find((i) => i.op === "ENTRYPOINT")!.args), [
    "/usr/local/bin/edge-bridge",
  ]);
  assert.deepEqual(JSON.parse(runtime.find((i) => i.op === "CMD")!.args), ["serve"]);
  assert.match(runtime.find((i) => i.op === "HEALTHCHECK")!.args, /\/healthz/);

  // The image's config names the volumes as the data and shared directories, and listens beyond loopback.
  const checked = await run(Deno.execPath(), [
    ...denoRunArgs(),
    "check-config",
    "--config",
    repo("deploy/container.yaml"),
  ], {
    env: { EDGE_BRIDGE_HA_MODE: "file-lock" },
  });
  assert.equal(checked.code, 0, show(checked));
  const config = JSON.parse(checked.stdout);
  assert.equal(config.server.host, "0.0.0.0");
  assert.deepEqual([config.ha.dataDir, config.ha.fileLock.dir], volumes);

  // Every COPY source exists and is not left out of the build context by .dockerignore.
  const ignored = (await Deno.readTextFile(repo(".dockerignore"))).split("\n").map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#")).map((l) => l.replace(/\/$/, ""));
  for (const copy of ins.filter((i) => i.op === "COPY" && !i.args.startsWith("--from"))) {
    for (const src of copy.args.split(/\s+/).slice(0, -1)) {
      await Deno.stat(repo(src)); // throws when missing
      const path = src.replace(/\/$/, "");
      assert.ok(
        !ignored.some((p) => path === p || path.startsWith(`${p}/`)),
        `COPY ${src} is excluded by .dockerignore`,
      );
    }
  }
});

Deno.test("Dockerfile: the HEALTHCHECK command passes on a bridge's /healthz, fails otherwise", async () => {
  const hc = dockerfileInstructions(await dockerfile()).find((i) => i.op === "HEALTHCHECK")!.args;
  const argv = JSON.parse(hc.slice(hc.indexOf("CMD ") + 4)) as string[];
  assert.equal(argv[0], "bash", "the check needs only the runtime image's bash");
  const probe = (port: number) =>
    run(argv[0], argv.slice(1), { env: { EDGE_BRIDGE_SERVER_PORT: String(port), PATH: "/usr/bin:/bin" } });

  const bridge = await BridgeProcess.start();
  try {
    const ok = await probe(bridge.port);
    assert.equal(ok.code, 0, `healthy bridge on ${bridge.port}:\n${show(ok)}`);
  } finally {
    await bridge.stop();
  }

  // Something that answers, but not 200.
  const unhealthy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    () => new Response("no", { status: 503 }),
  );
  try {
    const r = await probe(unhealthy.addr.port);
    assert.notEqual(r.code, 0, `a 503 is unhealthy:\n${show(r)}`);
  } finally {
    await unhealthy.shutdown();
  }
  // Nothing listening at all (the port the bridge just released).
  const closed = await probe(bridge.port);
  assert.notEqual(closed.code, 0, `a closed port is unhealthy:\n${show(closed)}`);
});

// ---------------------------------------------------------------------------------------------------
// docker-compose.yml

// deno-lint-ignore no-explicit-any
type Json = any;

async function composeConfig(files: string[], profiles: string[] = []): Promise<Json> {
  const { "compose-config": composeConfigBin } = await tools();
  const args = [...files.flatMap((f) => ["-f", f]), ...profiles.flatMap((p) => ["--profile", p])];
  const r = await run(composeConfigBin, args);
  assert.equal(r.code, 0, `compose-config ${args.join(" ")}:\n${show(r)}`);
  return JSON.parse(r.stdout);
}

const BASE = repo("docker-compose.yml");
const FILE_LOCK = repo("docker-compose.file-lock.yml");

Deno.test("docker-compose.yml: the walkthrough's services, profiles and volumes", async () => {
  const project = await composeConfig([BASE]);
  const services = project.services;
  assert.deepEqual(
    Object.keys(services).sort(),
    ["backup", "consumer", "heartbeat-key", "kafka", "kafka-init", "live", "producer", "toxiproxy"],
  );
  assert.deepEqual(Object.keys(project.volumes).sort(), ["backup-data", "ha-key", "live-data"]);
  // The kcat reader is in the profile "tools" only.
  const all = await composeConfig([BASE], ["*"]);
  assert.deepEqual(Object.keys(all.services).filter((s) => !(s in services)), ["kcat"]);
  assert.deepEqual(all.services.kcat.profiles, ["tools"]);

  // Kafka: the apache/kafka 4.1 image in KRaft mode, for the network (kafka:9092) and the host (29092).
  const kafka = services.kafka;
  assert.match(kafka.image, /^apache\/kafka:4\.1\.\d+$/);
  assert.equal(kafka.environment.KAFKA_PROCESS_ROLES, "broker,controller");
  const advertised = new Map<string, string>(
    kafka.environment.KAFKA_ADVERTISED_LISTENERS.split(",").map((l: string) => l.split("://")),
  );
  assert.equal(advertised.get("INTERNAL"), "kafka:9092");
  assert.equal(advertised.get("EXTERNAL"), "localhost:29092");
  assert.ok(kafka.ports.some((p: Json) => p.target === 29092 && p.published === "29092"));
  assert.ok(kafka.healthcheck.test.length > 0);

  // The one-shot topic service runs once Kafka is healthy, and the bridges wait for it to succeed.
  const init = services["kafka-init"];
  assert.equal(init.depends_on.kafka.condition, "service_healthy");
  const cmd: string[] = init.command;
  assert.equal(cmd[cmd.indexOf("--topic") + 1], "test");
  assert.ok(cmd.includes("--if-not-exists"));

  // A live and a backup, built from the Dockerfile, that know each other (heartbeat by default).
  for (const [name, peer] of [["live", "backup"], ["backup", "live"]]) {
    const s = services[name];
    assert.equal(s.build.context.replace(/\/$/, ""), root.replace(/\/$/, ""));
    assert.equal(s.build.dockerfile, "Dockerfile");
    assert.equal(s.depends_on["kafka-init"].condition, "service_completed_successfully");
    assert.equal(s.environment.EDGE_BRIDGE_HA_MODE, "heartbeat");
    assert.equal(s.environment.EDGE_BRIDGE_HA_HEARTBEAT_PEERS, `${peer}:7946`);
    assert.equal(s.environment.EDGE_BRIDGE_HA_ADVERTISED_URL, `ws://${name}:8080/ws`);
    assert.equal(s.environment.EDGE_BRIDGE_HA_PAIR_ID, services[peer].environment.EDGE_BRIDGE_HA_PAIR_ID);
    // Docker waits longer than the drain (server.shutdownTimeoutMs, 10 s by default) before it kills.
    assert.ok(Number.parseInt(s.stop_grace_period) > 10, `${name} stop_grace_period ${s.stop_grace_period}`);
    assert.ok(
      s.volumes.some((v: Json) => v.source === `${name}-data` && v.target === "/var/lib/edge-bridge"),
    );
    // Heartbeat mode requires the pair's key: one file, made once, mounted read-only on both.
    assert.equal(s.depends_on["heartbeat-key"].condition, "service_completed_successfully");
    const keyFile: string = s.environment.EDGE_BRIDGE_HA_HEARTBEAT_KEY_FILE;
    const keyMount = s.volumes.find((v: Json) => v.source === "ha-key");
    assert.ok(keyMount?.read_only && keyFile.startsWith(`${keyMount.target}/`), `${name} mounts the key`);
  }
  const keyMaker = services["heartbeat-key"];
  assert.ok(keyMaker.volumes.some((v: Json) => v.source === "ha-key" && !v.read_only));
  assert.match(keyMaker.command.join(" "), /urandom/);
  assert.ok(
    Number(services.live.environment.EDGE_BRIDGE_HA_PRIORITY) >
      Number(services.backup.environment.EDGE_BRIDGE_HA_PRIORITY),
    "the original live has the higher priority (failback)",
  );

  // The producer and the consumer: the binary's own commands, on both nodes' URLs.
  const urls = ["ws://live:8080/ws", "ws://backup:8080/ws"];
  for (const [name, command] of [["producer", "produce"], ["consumer", "consume"]]) {
    const c: string[] = services[name].command;
    assert.equal(c[0], command);
    assert.deepEqual(c.flatMap((a, i) => a === "--url" ? [c[i + 1]] : []), urls);
    assert.equal(c[c.indexOf("--topic") + 1], "test");
    assert.equal(services[name].image, services.live.image);
  }
});

Deno.test("docker-compose.yml: each bridge reaches Kafka only through its own toxiproxy proxy", async () => {
  const services = (await composeConfig([BASE])).services;
  const tp = services.toxiproxy;
  const configArg = (tp.command as string[]).find((a) => a.startsWith("-config="))!.slice("-config=".length);
  const mount = tp.volumes.find((v: Json) => v.target === configArg);
  assert.ok(mount, `toxiproxy's -config ${configArg} is mounted`);
  const proxies = JSON.parse(await Deno.readTextFile(mount.source)) as Json[];
  const kafkaEnv = services.kafka.environment;
  const advertised = new Map<string, string>(
    kafkaEnv.KAFKA_ADVERTISED_LISTENERS.split(",").map((l: string) => l.split("://")),
  );
  const listenerPort = new Map<string, string>(
    kafkaEnv.KAFKA_LISTENERS.split(",").map((l: string) => {
      const [name, addr] = l.split("://");
      return [addr.split(":").at(-1)!, name];
    }),
  );
  const used = new Set<string>();
  for (const name of ["live", "backup"]) {
    const brokers: string = services[name].environment.EDGE_BRIDGE_KAFKA_BROKERS;
    const [host, port] = brokers.split(":");
    assert.equal(host, "toxiproxy", `${name} bootstraps through toxiproxy`);
    const proxy = proxies.find((p) => p.listen.endsWith(`:${port}`));
    assert.ok(proxy, `a toxiproxy proxy listens on ${port}`);
    assert.equal(proxy.enabled, true);
    assert.ok(!used.has(proxy.name), "each bridge has its own proxy");
    used.add(proxy.name);
    assert.equal(proxy.name, `kafka-${name}`, "the walkthrough's toggle command names it");
    // The proxy's upstream is a Kafka listener that advertises the proxy itself: metadata keeps the
    // bridge on the proxy, so cutting the proxy cuts the bridge off from Kafka entirely.
    const [upHost, upPort] = proxy.upstream.split(":");
    assert.equal(upHost, "kafka");
    const listener = listenerPort.get(upPort);
    assert.ok(listener, `Kafka listens on ${upPort}`);
    assert.equal(advertised.get(listener), brokers, `listener ${listener} advertises ${brokers}`);
  }
});

Deno.test("docker-compose.file-lock.yml: both bridges share one volume, the image's lock directory", async () => {
  const project = await composeConfig([BASE, FILE_LOCK]);
  assert.deepEqual(Object.keys(project.volumes).sort(), ["backup-data", "ha-key", "ha-shared", "live-data"]);
  const container = parseYaml(await Deno.readTextFile(repo("deploy/container.yaml")));
  for (const name of ["live", "backup"]) {
    const s = project.services[name];
    assert.equal(s.environment.EDGE_BRIDGE_HA_MODE, "file-lock");
    const shared = s.volumes.filter((v: Json) => v.source === "ha-shared");
    assert.deepEqual(shared.map((v: Json) => [v.type, v.target]), [["volume", container.ha.fileLock.dir]]);
    // Everything else is the base file's: the override only changes the HA mode.
    assert.equal(s.environment.EDGE_BRIDGE_KAFKA_BROKERS, `toxiproxy:${name === "live" ? 9094 : 9095}`);
  }
});

Deno.test("compose-config rejects what Docker Compose rejects", async () => {
  const { "compose-config": bin } = await tools();
  await withTempDir(async (dir) => {
    const base = await Deno.readTextFile(BASE);
    const cases: [string, string][] = [
      ["an unknown service key", base.replace("    hostname: live\n", "    hostnme: live\n")],
      [
        "a depends_on naming no service",
        base.replace(
          "    live:\n      condition: service_healthy",
          "    lively:\n      condition: service_healthy",
        ),
      ],
      [
        "a volume that is not declared",
        base.replace("      - live-data:/var/lib/edge-bridge", "      - live-state:/var/lib/edge-bridge"),
      ],
    ];
    for (const [what, text] of cases) {
      assert.notEqual(text, base, `the broken copy (${what}) differs`);
      await Deno.writeTextFile(`${dir}/docker-compose.yml`, text);
      await Deno.copyFile(repo("deploy/compose/toxiproxy.json"), `${dir}/toxiproxy.json`);
      const r = await run(bin, ["-f", `${dir}/docker-compose.yml`]);
      assert.notEqual(r.code, 0, `${what} is rejected:\n${show(r)}`);
    }
  });
});

// ---------------------------------------------------------------------------------------------------
// systemd unit, config and install.sh

/** The unit's settings: key -> every value it is given, in order. */
async function unitSettings(path = repo("deploy/edge-bridge.service")): Promise<Map<string, string[]>> {
  const settings = new Map<string, string[]>();
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) settings.set(m[1], [...(settings.get(m[1]) ?? []), m[2]]);
  }
  return settings;
}

const STUB_BINARY = '#!/bin/sh\n[ "$1" = version ] && echo "edge-bridge 0.0.0-stub"\nexit 0\n';

async function install(scratch: string, binary: string): Promise<Run> {
  return await run("bash", [repo("scripts/install.sh"), "--root", scratch, "--binary", binary]);
}

/** Every path under dir with its type, mode, owner, size, mtime and content. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (path: string) => {
    const st = await Deno.lstat(path);
    const content = st.isFile ? await Deno.readTextFile(path).catch(() => "<binary>") : "";
    out.set(
      path.slice(dir.length) || "/",
      `${
        st.isDirectory ? "d" : "f"
      } ${st.mode} ${st.uid}:${st.gid} ${st.size} ${st.mtime?.getTime()} ${content}`,
    );
    if (st.isDirectory) { for await (const e of Deno.readDir(path)) await walk(`${path}/${e.name}`); }
  };
  await walk(dir);
  return out;
}

Deno.test("systemd unit: the settings issue 9 asks for, consistent with deploy/config.yaml", async () => {
  const unit = await unitSettings();
  const one = (k: string) => {
    const v = unit.get(k);
    assert.ok(v && v.length === 1, `${k} set once (${v})`);
    return v[0];
  };
  assert.equal(one("Type"), "notify");
  assert.equal(one("User"), "edge-bridge");
  assert.equal(one("Restart"), "on-failure");
  assert.equal(
    one("ExecStartPre"),
    "/usr/local/bin/edge-bridge check-config --config /etc/edge-bridge/config.yaml",
  );
  assert.equal(one("ExecStart"), "/usr/local/bin/edge-bridge serve --config /etc/edge-bridge/config.yaml");
  for (const k of ["NoNewPrivileges", "PrivateTmp", "ProtectHome"]) assert.equal(one(k), "yes", k);
  assert.equal(one("ProtectSystem"), "strict");
  const families = one("RestrictAddressFamilies").split(/\s+/);
  assert.ok(families.includes("AF_UNIX"), "AF_UNIX stays (the sd_notify socket)");
  assert.ok(unit.get("SystemCallFilter")?.some((f) => f.startsWith("@system-service")));
  assert.ok(!unit.has("MemoryDenyWriteExecute"), "MemoryDenyWriteExecute would kill V8's JIT");
  assert.match(
    await Deno.readTextFile(repo("deploy/edge-bridge.service")),
    /Not MemoryDenyWriteExecute.*V8/s,
  );

  // deploy/config.yaml, as the unit runs it: valid, and inside the unit's limits.
  const r = await run(Deno.execPath(), [
    ...denoRunArgs(),
    "check-config",
    "--config",
    repo("deploy/config.yaml"),
  ]);
  assert.equal(r.code, 0, show(r));
  const config = JSON.parse(r.stdout);
  const stopSec = Number(/^(\d+)s?$/.exec(one("TimeoutStopSec"))![1]);
  assert.ok(
    stopSec * 1000 > config.server.shutdownTimeoutMs + 5000,
    "TimeoutStopSec is well above the drain",
  );
  assert.ok(
    Number(one("LimitNOFILE")) > 2 * config.server.maxConnections,
    "LimitNOFILE is sized for clients",
  );
  const writable = one("ReadWritePaths").split(/\s+/).map((p) => p.replace(/^-/, ""));
  assert.ok(writable.includes(config.ha.dataDir), `ha.dataDir ${config.ha.dataDir} is writable`);
  assert.ok(writable.includes("/var/lib/edge-bridge-shared"), "the HA shared directory is writable");
  assert.equal(`/var/lib/${one("StateDirectory")}`, config.ha.dataDir);
});

Deno.test("install.sh: --help, and a binary that does not run installs nothing", async () => {
  const help = await run("bash", [repo("scripts/install.sh"), "--help"]);
  assert.equal(help.code, 0, show(help));
  assert.match(help.stdout, /--root DIR/);
  assert.match(help.stdout, /--binary PATH/);
  const bad = await run("bash", [repo("scripts/install.sh"), "--bogus"]);
  assert.equal(bad.code, 2, show(bad));

  await withTempDir(async (scratch) => {
    await Deno.writeTextFile(`${scratch}/not-a-binary`, "just text\n"); // not executable
    const r = await install(scratch, `${scratch}/not-a-binary`);
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /does not run here/);
    const left = [...(await snapshot(scratch)).keys()];
    assert.deepEqual(left, ["/", "/not-a-binary"], "nothing was installed");
  });
});

Deno.test("install.sh: into a scratch root, twice; an edited config is kept; the unit verifies", async () => {
  const { "systemd-analyze": analyze } = await tools();
  await withTempDir(async (dir) => {
    const scratch = `${dir}/root`;
    await Deno.mkdir(scratch);
    const binary = `${dir}/edge-bridge`;
    await Deno.writeTextFile(binary, STUB_BINARY, { mode: 0o755 });

    const first = await install(scratch, binary);
    assert.equal(first.code, 0, show(first));
    const read = (p: string) => Deno.readTextFile(`${scratch}${p}`);
    assert.equal(await read("/usr/local/bin/edge-bridge"), STUB_BINARY);
    assert.equal((await Deno.stat(`${scratch}/usr/local/bin/edge-bridge`)).mode! & 0o777, 0o755);
    assert.equal(
      await read("/etc/systemd/system/edge-bridge.service"),
      await Deno.readTextFile(repo("deploy/edge-bridge.service")),
    );
    assert.equal(
      await read("/etc/edge-bridge/config.yaml"),
      await Deno.readTextFile(repo("deploy/config.yaml")),
    );
    assert.equal((await Deno.stat(`${scratch}/etc/edge-bridge/config.yaml`)).mode! & 0o777, 0o640);
    // The dedicated user, a system account without a login shell, and its group.
    const passwd = (await read("/etc/passwd")).split("\n").filter((l) => l.startsWith("edge-bridge:"));
    assert.equal(passwd.length, 1, await read("/etc/passwd"));
    const [, , uid, gid, , home, shell] = passwd[0].split(":");
    assert.ok(Number(uid) > 0 && Number(uid) < 1000, `a system uid (${uid})`);
    assert.equal(home, "/var/lib/edge-bridge");
    assert.equal(shell, "/usr/sbin/nologin");
    assert.match(await read("/etc/group"), new RegExp(`^edge-bridge:x:${gid}:`, "m"));
    if (Deno.uid() === 0) {
      const st = await Deno.stat(`${scratch}/etc/edge-bridge/config.yaml`);
      assert.equal(`${st.uid}:${st.gid}`, `0:${gid}`, "root owns the config; the service's group reads it");
    }

    // Again: nothing changes, not even a timestamp, and it says so.
    const before = await snapshot(scratch);
    const second = await install(scratch, binary);
    assert.equal(second.code, 0, show(second));
    assert.deepEqual(await snapshot(scratch), before);
    assert.doesNotMatch(second.stdout, /: (installed|updated)$/m, second.stdout);
    assert.match(second.stdout, /user edge-bridge: exists/);

    // An edited config survives; the shipped one lands beside it, once.
    const edited = (await read("/etc/edge-bridge/config.yaml")).replace("port: 8080", "port: 9090");
    await Deno.writeTextFile(`${scratch}/etc/edge-bridge/config.yaml`, edited);
    for (let i = 0; i < 2; i++) {
      const again = await install(scratch, binary);
      assert.equal(again.code, 0, show(again));
      assert.equal(await read("/etc/edge-bridge/config.yaml"), edited);
      assert.equal(
        await read("/etc/edge-bridge/config.yaml.new"),
        await Deno.readTextFile(repo("deploy/config.yaml")),
      );
      assert.match(again.stdout, /config\.yaml: kept/);
    }

    // A new binary replaces the old one.
    await Deno.writeTextFile(binary, STUB_BINARY.replace("stub", "stub-2"), { mode: 0o755 });
    const upgrade = await install(scratch, binary);
    assert.match(upgrade.stdout, /\/usr\/local\/bin\/edge-bridge: updated/);

    // systemd-analyze verify in the installed root (its ExecStart binary is there); it needs the
    // targets the unit names, copied in from the host. verify exits 0 on an unknown key or a bad value
    // ("..., ignoring"), so any output is a finding.
    await Deno.mkdir(`${scratch}/usr/lib/systemd`, { recursive: true });
    const copied = await run("cp", ["-r", "/lib/systemd/system", `${scratch}/usr/lib/systemd/`]);
    assert.equal(copied.code, 0, show(copied));
    const verify = (unit = "edge-bridge.service") =>
      run(analyze, ["verify", "--man=no", `--root=${scratch}`, unit]);
    const clean = await verify();
    assert.equal(clean.code, 0, show(clean));
    assert.equal((clean.stdout + clean.stderr).trim(), "", show(clean));
    // Hardening: systemd's own exposure score stays at 2.0 ("OK") or below.
    const security = await run(analyze, [
      "security",
      "--offline=yes",
      `--root=${scratch}`,
      "--threshold=20",
      "edge-bridge.service",
    ]);
    assert.equal(security.code, 0, show(security));
    assert.match(security.stdout, /Overall exposure level for edge-bridge\.service: (?:[01]\.\d|2\.0) /);

    // The same check on a broken copy and without the binary: it must complain.
    const unitPath = `${scratch}/etc/systemd/system/edge-bridge.service`;
    const good = await Deno.readTextFile(unitPath);
    await Deno.writeTextFile(
      `${scratch}/etc/systemd/system/edge-bridge-broken.service`,
      good.replace("ProtectSystem=strict", "ProtectSystm=strict").replace(
        "TimeoutStopSec=30s",
        "TimeoutStopSec=soon",
      ),
    );
    const broken = await verify("edge-bridge-broken.service");
    assert.match(broken.stderr, /Unknown key 'ProtectSystm'/, show(broken));
    assert.match(broken.stderr, /Failed to parse .*soon/, show(broken));
    await Deno.remove(`${scratch}/usr/local/bin/edge-bridge`);
    const missing = await verify();
    assert.match(missing.stderr, /edge-bridge is not executable/, show(missing));
  });
});

// ---------------------------------------------------------------------------------------------------
// Release workflow and shell scripts

Deno.test("release workflow: on a tag, tests, five targets, a smoke test, checksums; actionlint clean", async () => {
  const { actionlint } = await tools();
  const path = repo(".github/workflows/release.yml");
  const wf = parseYaml(await Deno.readTextFile(path));
  assert.deepEqual(wf.on.push.tags, ["v*"]);
  const jobs = wf.jobs;
  assert.deepEqual(
    jobs.build.strategy.matrix.target.sort(),
    [
      "aarch64-apple-darwin",
      "aarch64-unknown-linux-gnu",
      "x86_64-apple-darwin",
      "x86_64-pc-windows-msvc",
      "x86_64-unknown-linux-gnu",
    ],
  );
  const steps = (job: string) => jobs[job].steps.map((s: Json) => s.run ?? "").join("\n");
  assert.match(steps("build"), /scripts\/compile\.sh --target "\$TARGET"/);
  assert.match(steps("test"), /bash \.ci\/run/);
  assert.equal(jobs.smoke.needs, "build");
  assert.match(jobs.smoke.services.kafka.image, /^apache\/kafka:/);
  assert.match(steps("smoke"), /edge-bridge-x86_64-unknown-linux-gnu version/);
  assert.match(steps("smoke"), / produce --url /);
  assert.deepEqual([...jobs.release.needs].sort(), ["build", "smoke", "test"]);
  assert.equal(jobs.release.permissions.contents, "write");
  assert.match(steps("release"), /sha256sum/);
  assert.match(steps("release"), /gh release create/);
  const setupDeno = jobs.build.steps.find((s: Json) => s.uses?.startsWith("denoland/setup-deno@"));
  assert.equal(setupDeno.with["deno-version"], "${{ env.DENO_VERSION }}");
  assert.equal(wf.env.DENO_VERSION, "2.9.6");

  // actionlint checks the workflow's schema, expressions and job graph, and runs shellcheck on each run:.
  const lint = await run(actionlint, ["-no-color", path]);
  assert.equal(lint.code, 0, show(lint));
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(
      `${dir}/release.yml`,
      (await Deno.readTextFile(path)).replace("needs: [test, build, smoke]", "needs: [test, build, smok]"),
    );
    const r = await run(actionlint, ["-no-color", `${dir}/release.yml`]);
    assert.notEqual(r.code, 0, `a job needing a missing job is reported:\n${show(r)}`);
  });
});

Deno.test("packaging scripts: shellcheck clean", async () => {
  const { shellcheck } = await tools();
  const r = await run(shellcheck, ["scripts/install.sh", "scripts/lint_packaging.sh", "scripts/compile.sh"]);
  assert.equal(r.code, 0, show(r));
});
