/**
 * V8 CPU profiles of a process started with `deno run --inspect=HOST:PORT`, over the
 * Chrome DevTools Protocol (Deno has no --cpu-prof), and a self-time summary of them.
 *
 *   const profiler = await startProfile("127.0.0.1:9229");
 *   ... load ...
 *   const profile = await profiler.stop();           // Chrome .cpuprofile JSON
 *   console.log(formatMarkdown(summarize(profile)));
 *
 *   deno run -A scripts/cpu_profile.ts summarize FILE.cpuprofile [--top N]
 */
import { parseArgs } from "node:util";

export interface CallFrame {
  functionName: string;
  scriptId: string;
  url: string;
  /** 0-based, -1 when unknown. */
  lineNumber: number;
  columnNumber: number;
}

export interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

/** Profiler.Profile: times in µs; timeDeltas[i] is the time from sample i-1 (or startTime) to sample i. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Profiler {
  /**
   * Stops sampling, returns the profile and closes the DevTools connection. Positions in scripts
   * Deno transpiled (TypeScript) are mapped back to the source through their inline source maps.
   */
  stop(): Promise<CpuProfile>;
}

/** The first target's webSocketDebuggerUrl, waiting up to 10 s for the inspector (it lists none at first). */
async function debuggerUrl(inspectHostPort: string): Promise<string> {
  const list = `http://${inspectHostPort}/json/list`;
  for (const deadline = Date.now() + 10_000;;) {
    try {
      const url = (await (await fetch(list)).json())[0]?.webSocketDebuggerUrl;
      if (url) return url;
      if (Date.now() > deadline) throw new Error(`no inspector target at ${list}`);
    } catch (e) {
      if (Date.now() > deadline) throw e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Connects to the inspector at "host:port" (its first target in /json/list) and starts sampling
 * every `intervalUs` microseconds.
 */
export async function startProfile(inspectHostPort: string, intervalUs = 100): Promise<Profiler> {
  const url = await debuggerUrl(inspectHostPort);
  const ws = new WebSocket(url);
  const pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  let lastId = 0;
  const failAll = (e: Error) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const sourceMaps = new Map<string, string>(); // scriptId -> data: URL, from Debugger.scriptParsed
  ws.onmessage = (e) => {
    const msg = JSON.parse(e.data as string);
    if (msg.method === "Debugger.scriptParsed" && msg.params.sourceMapURL?.startsWith("data:")) {
      sourceMaps.set(msg.params.scriptId, msg.params.sourceMapURL);
    }
    const p = msg.id !== undefined ? pending.get(msg.id) : undefined; // events have no id
    if (!p) return;
    if (msg.error) p.reject(new Error(`inspector: ${msg.error.message} (${msg.error.code})`));
    else p.resolve(msg.result);
  };
  ws.onclose = () => failAll(new Error("inspector connection closed"));
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
  ws.onerror = () => failAll(new Error("inspector connection failed"));
  const send = <T>(method: string, params: Record<string, unknown> = {}): Promise<T> => {
    const id = ++lastId;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const answer = new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      timer = setTimeout(() => reject(new Error(`inspector: no answer to ${method} within 60 s`)), 60_000);
    });
    try {
      ws.send(JSON.stringify({ id, method, params }));
    } catch (e) {
      pending.get(id)!.reject(e as Error);
    }
    return answer.finally(() => (clearTimeout(timer), pending.delete(id)));
  };
  try {
    await send("Profiler.enable");
    await send("Profiler.setSamplingInterval", { interval: intervalUs });
    await send("Profiler.start");
  } catch (e) {
    ws.close();
    throw e;
  }
  return {
    async stop() {
      try {
        const { profile } = await send<{ profile: CpuProfile }>("Profiler.stop");
        try { // Debugger.enable reports every loaded script, with its source map
          await send("Debugger.enable");
          await send("Debugger.disable");
          await mapToSource(profile, sourceMaps);
        } catch (e) {
          console.error(`cpu_profile: lines left as in the transpiled JS: ${(e as Error).message}`);
        }
        return profile;
      } finally {
        if (ws.readyState !== WebSocket.CLOSED) {
          const closed = new Promise((r) => ws.addEventListener("close", r));
          ws.close();
          await closed;
        }
      }
    },
  };
}

/** Rewrites call frame positions in scripts whose inline source map has that script as only source. */
async function mapToSource(profile: CpuProfile, sourceMaps: Map<string, string>): Promise<void> {
  const decoded = new Map<string, number[][][] | undefined>();
  for (const { callFrame: f } of profile.nodes) {
    if (!sourceMaps.has(f.scriptId) || f.lineNumber < 0) continue;
    if (!decoded.has(f.scriptId)) {
      const map = await (await fetch(sourceMaps.get(f.scriptId)!)).json();
      const own = map.sources?.length === 1 && new URL(map.sources[0], f.url).href === f.url;
      decoded.set(f.scriptId, own ? decodeMappings(map.mappings) : undefined);
    }
    const segments = decoded.get(f.scriptId)?.[f.lineNumber] ?? [];
    const at = segments.findLast((seg) => seg[0] <= f.columnNumber) ?? segments[0];
    if (at) [f.lineNumber, f.columnNumber] = [at[2], at[3]];
  }
}

/** A source map's "mappings": per generated line, segments [column, source, line, column] (0-based). */
export function decodeMappings(mappings: string): number[][][] {
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const state = [0, 0, 0, 0]; // deltas accumulate across the map, except the column: per line
  return mappings.split(";").map((line) => {
    state[0] = 0;
    return line.split(",").filter(Boolean).flatMap((segment) => {
      const fields: number[] = [];
      for (let i = 0, value = 0, shift = 0; i < segment.length; i++) {
        const digit = B64.indexOf(segment[i]);
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          fields.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = shift = 0;
        }
      }
      fields.slice(0, 4).forEach((d, i) => (state[i] += d));
      return fields.length >= 4 ? [[...state]] : [];
    });
  });
}

export interface FunctionRow {
  /** Function name, "(anonymous)" when V8 has none. */
  name: string;
  /** Shortened url:line (1-based), "" for V8's pseudo-frames such as (garbage collector). */
  location: string;
  package: string;
  samples: number;
  selfMs: number;
  /** Percent of non-idle time; null for (idle). */
  pct: number | null;
}

export interface PackageRow {
  package: string;
  samples: number;
  selfMs: number;
  /** Percent of non-idle time; null for (idle). */
  pct: number | null;
}

export interface Summary {
  samples: number;
  totalMs: number;
  idleMs: number;
  /** Top functions by self time, (idle) included. */
  functions: FunctionRow[];
  /** Every package, by self time. */
  packages: PackageRow[];
}

const repoRoot = new URL("../", import.meta.url).href; // file:///…/ of this checkout
const NPM = "/npm/registry.npmjs.org/";
const NODE_MODULES = "/node_modules/";
export const RUNTIME = "node: / ext: (runtime)";
export const OPS = "op_* (Deno ops, Rust)";

/** Shortens a script url: the part after the npm cache or the repo root; ext:/node: as they are. */
export function shortUrl(url: string, root = repoRoot): string {
  for (const marker of [NPM, NODE_MODULES]) {
    const i = url.lastIndexOf(marker);
    if (i >= 0) return url.slice(i + marker.length);
  }
  if (url.startsWith(root)) return url.slice(root.length);
  return url;
}

/** The bucket a frame's self time rolls up into. */
export function packageOf(frame: CallFrame, root = repoRoot): string {
  const { url, functionName } = frame;
  if (!url) { // V8's pseudo-frames such as (garbage collector), Deno's ops, other native code
    if (functionName.startsWith("(")) return functionName;
    return functionName.startsWith("op_") ? OPS : "(native)";
  }
  if (url.startsWith("ext:") || url.startsWith("node:")) return RUNTIME;
  if (url.includes(NPM) || url.includes(NODE_MODULES)) {
    const parts = shortUrl(url, root).split("/");
    return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
  }
  if (url.startsWith(root)) {
    const parts = url.slice(root.length).split("/");
    return parts[0] === "src" && parts.length > 2 ? `src/${parts[1]}` : parts.join("/");
  }
  return "other";
}

/**
 * Self time per function and per package. Sample i covers the time from its timestamp to the next
 * sample's (the last one: to endTime), as Chrome DevTools counts it; nodes are merged by
 * functionName + url + lineNumber, whatever their call path. Percentages are of non-idle time.
 */
export function summarize(profile: CpuProfile, top = 25, root = repoRoot): Summary {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>(); // node id -> µs
  const hits = new Map<number, number>();
  let t = profile.startTime;
  const stamps = profile.timeDeltas.map((d) => (t += d));
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i];
    const next = i + 1 < stamps.length ? stamps[i + 1] : profile.endTime;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, next - stamps[i]));
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }

  const fns = new Map<string, FunctionRow>();
  const pkgs = new Map<string, PackageRow>();
  let totalUs = 0, idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = nodes.get(id)?.callFrame;
    if (!frame) throw new Error(`sample refers to unknown node ${id}`);
    const ms = us / 1000, n = hits.get(id)!;
    totalUs += us;
    if (frame.functionName === "(idle)") idleUs += us;
    const pkg = packageOf(frame, root);
    const key = `${frame.functionName}\0${frame.url}\0${frame.lineNumber}`;
    const fn = fns.get(key) ?? {
      name: frame.functionName || "(anonymous)",
      location: frame.url ? `${shortUrl(frame.url, root)}:${frame.lineNumber + 1}` : "",
      package: pkg,
      samples: 0,
      selfMs: 0,
      pct: null,
    };
    fn.samples += n;
    fn.selfMs += ms;
    fns.set(key, fn);
    const p = pkgs.get(pkg) ?? { package: pkg, samples: 0, selfMs: 0, pct: null };
    p.samples += n;
    p.selfMs += ms;
    pkgs.set(pkg, p);
  }
  const busyMs = (totalUs - idleUs) / 1000;
  const withPct = <R extends { package: string; selfMs: number; pct: number | null }>(rows: R[]) =>
    rows.map((r) => ({ ...r, pct: r.package === "(idle)" || !busyMs ? null : (100 * r.selfMs) / busyMs }))
      .sort((a, b) => b.selfMs - a.selfMs);
  return {
    samples: profile.samples.length,
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: withPct([...fns.values()]).slice(0, top),
    packages: withPct([...pkgs.values()]),
  };
}

/** Two markdown tables: top functions by self time, then the per-package rollup. */
export function formatMarkdown(s: Summary): string {
  const ms = (x: number) => x.toFixed(1);
  const pct = (x: number | null) => (x === null ? "—" : `${x.toFixed(1)}%`);
  const cell = (x: string) => x.replaceAll("|", "\\|");
  return [
    `${s.samples} samples over ${ms(s.totalMs)} ms, ${ms(s.totalMs - s.idleMs)} ms not idle ` +
    `(${s.totalMs ? ((100 * (s.totalMs - s.idleMs)) / s.totalMs).toFixed(1) : "0"}%); % is of non-idle time.`,
    "",
    "| # | self ms | self % | function | location |",
    "|---:|---:|---:|---|---|",
    ...s.functions.map((f, i) =>
      `| ${i + 1} | ${ms(f.selfMs)} | ${pct(f.pct)} | ${cell(f.name)} | ${cell(f.location)} |`
    ),
    "",
    "| package | self ms | self % |",
    "|---|---:|---:|",
    ...s.packages.map((p) => `| ${cell(p.package)} | ${ms(p.selfMs)} | ${pct(p.pct)} |`),
  ].join("\n");
}

if (import.meta.main) {
  const usage = "Usage: deno run -A scripts/cpu_profile.ts summarize FILE.cpuprofile [--top N]\n\n" +
    "Prints the top functions by self time and a per-package rollup as markdown tables.\n" +
    "Record a profile with startProfile()/stop() against `deno run --inspect=HOST:PORT`,\n" +
    "e.g. `deno task bench --profile DIR`.";
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log(usage);
    Deno.exit(0);
  }
  const top = Number(values.top);
  if (positionals[0] !== "summarize" || positionals.length !== 2 || !(top > 0)) {
    console.error(usage);
    Deno.exit(2);
  }
  const profile: CpuProfile = JSON.parse(await Deno.readTextFile(positionals[1]));
  console.log(formatMarkdown(summarize(profile, top)));
}
