/**
 * The house rules of docs/design.md, checked on the module graph Deno itself resolves
 * (`deno info --json`), so that a change that breaks one fails here rather than in review.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

interface InfoModule {
  specifier: string;
  dependencies?: { specifier: string; code?: { specifier: string }; type?: { specifier: string } }[];
}

const ROOT = new URL("../", import.meta.url).href;

/** Each local module of the graph from `entry` (path from the repo root) -> what it imports (resolved). */
async function graph(entry: string): Promise<Map<string, string[]>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry],
    cwd: fileURLToPath(ROOT),
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const edges = new Map<string, string[]>();
  for (const m of info.modules) {
    if (!m.specifier.startsWith(ROOT)) continue;
    const deps = (m.dependencies ?? []).flatMap((d) => [d.code?.specifier, d.type?.specifier])
      .filter((s): s is string => s !== undefined)
      .map((s) => (s.startsWith(ROOT) ? s.slice(ROOT.length) : s));
    edges.set(m.specifier.slice(ROOT.length), [...new Set(deps)]);
  }
  return edges;
}

/** The strongly connected parts of more than one node (Tarjan): every import cycle. */
function cycles(edges: Map<string, Iterable<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!edges.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const part: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        part.push(w);
      } while (w !== v);
      if (part.length > 1) found.push(part.sort());
    }
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** src/<room> for a module in src/, the top-level file or folder otherwise. */
const room = (
  path: string,
) => (path.startsWith("src/") ? path.split("/").slice(0, 2).join("/") : path.split("/")[0]);
const isLocal = (s: string) => !s.includes(":");

const bridge = await graph("main.ts");

Deno.test("architecture: the cycle finder finds a cycle (so that an empty answer below means something)", () => {
  const found = cycles(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]], ["d", ["a"]]]));
  assert.deepEqual(found, [["a", "b", "c"]]);
});

Deno.test("architecture: no import cycles, between modules or between the rooms of src/", () => {
  assert.ok(bridge.size > 100, `the graph has ${bridge.size} local modules`);
  assert.deepEqual(cycles(bridge), []);
  const rooms = new Map<string, Set<string>>();
  for (const [from, deps] of bridge) {
    for (const to of deps.filter(isLocal)) {
      if (room(from) === room(to)) continue;
      if (!rooms.has(room(from))) rooms.set(room(from), new Set());
      rooms.get(room(from))!.add(room(to));
    }
  }
  assert.deepEqual(cycles(rooms), []);
});

Deno.test("architecture: the SDK depends only on src/protocol/, and on no Deno, Node or npm module", async () => {
  const sdk = await graph("src/client/mod.ts");
  for (const [from, deps] of sdk) {
    assert.ok(
      from.startsWith("src/client/") || from.startsWith("src/protocol/"),
      `${from} is in the SDK's graph`,
    );
    for (const to of deps) assert.ok(isLocal(to), `${from} imports ${to}`);
  }
});

/** The modules of the bridge's graph under `folder`: never none, or a rule about them would hold vacuously. */
function modulesIn(folder: string): [string, string[]][] {
  const found = [...bridge].filter(([from]) => from.startsWith(folder));
  assert.ok(found.length > 0, `no module under ${folder} in the graph`);
  return found;
}

Deno.test("architecture: src/protocol/ imports nothing outside itself", () => {
  for (const [from, deps] of modulesIn("src/protocol/")) {
    for (const to of deps) assert.ok(to.startsWith("src/protocol/"), `${from} imports ${to}`);
  }
});

Deno.test("architecture: kafkajs only under src/kafka/kafkajs/, ws only in src/server/, and the sink knows only src/kafka/types.ts", () => {
  const importers = (dep: RegExp) =>
    [...bridge].filter(([, deps]) => deps.some((d) => dep.test(d))).map(([from]) => from);
  const kafkajs = importers(/^npm:\/?kafkajs@/);
  assert.ok(kafkajs.length > 0, "the graph names kafkajs");
  for (const from of kafkajs) assert.match(from, /^src\/kafka\/kafkajs\//);
  const ws = importers(/^npm:\/?ws@/);
  assert.ok(ws.length > 0, "the graph names ws");
  for (const from of ws) assert.match(from, /^src\/server\//);
  for (const [from, deps] of modulesIn("src/sink/")) {
    for (const to of deps) {
      assert.ok(to.startsWith("src/sink/") || to === "src/kafka/types.ts", `${from} imports ${to}`);
    }
  }
});

Deno.test("architecture: HA gates the server without reaching into it: src/ha/ imports no session, server or sink", () => {
  for (const [from, deps] of modulesIn("src/ha/")) {
    for (const to of deps) {
      assert.doesNotMatch(to, /^src\/(session|server|sink|hub)\//, `${from} imports ${to}`);
    }
  }
});
