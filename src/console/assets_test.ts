import assert from "node:assert/strict";
import { ConsoleAssets, SDK_PATH } from "./assets.ts";
import { SDK_JS } from "./assets.generated.ts";

const root = new URL("../../", import.meta.url).pathname;

Deno.test("console assets: the committed assets.generated.ts is exactly what the sources build", async () => {
  const dir = await Deno.makeTempDir({ prefix: "edge-bridge-assets-test-" });
  try {
    const out = `${dir}/assets.generated.ts`;
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", `${root}scripts/build_assets.ts`, "--out", out],
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, text);
    const built = await Deno.readFile(out);
    const committed = await Deno.readFile(`${root}src/console/assets.generated.ts`);
    assert.ok(
      built.length === committed.length && built.every((b, i) => b === committed[i]),
      "src/console/assets.generated.ts is stale: run `deno task build:assets` and commit the result",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("console assets: the page, its script and style, and the SDK, with types and cache headers", () => {
  const assets = new ConsoleAssets("/bridge");
  assert.deepEqual(
    assets.paths.sort(),
    ["/", "/console/console.css", "/console/console.js", SDK_PATH].sort(),
  );
  const page = assets.respond("/")!;
  assert.equal(page.status, 200);
  assert.equal(page.headers["content-type"], "text/html; charset=utf-8");
  assert.match(page.headers["content-security-policy"], /script-src 'self'/);
  const html = new TextDecoder().decode(page.body);
  assert.match(html, /<meta name="edge-bridge-ws-path" content="\/bridge">/, "the page is told the ws path");
  assert.match(html, /<script type="module" src="\/console\/console.js"><\/script>/);

  const sdk = assets.respond(SDK_PATH)!;
  assert.equal(sdk.headers["content-type"], "text/javascript; charset=utf-8");
  assert.equal(sdk.headers["cache-control"], "no-cache");
  assert.equal(new TextDecoder().decode(sdk.body), SDK_JS);
  assert.match(SDK_JS, /export\s*\{[^}]*EdgeBridgeClient/, "the SDK bundle exports EdgeBridgeClient");
  assert.equal(sdk.headers["content-length"], String(sdk.body.length));
  assert.equal(assets.respond("/console/console.css")?.headers["content-type"], "text/css; charset=utf-8");
  assert.equal(assets.respond("/nope"), undefined);
});

Deno.test("console assets: a browser's copy that is still current gets a 304", () => {
  const assets = new ConsoleAssets("/ws");
  const first = assets.respond(SDK_PATH)!;
  const etag = first.headers.etag;
  assert.match(etag, /^"[A-Za-z0-9_-]+"$/);
  const again = assets.respond(SDK_PATH, `"other", W/${etag}`)!;
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
  assert.equal(again.headers.etag, etag);
  assert.equal(assets.respond(SDK_PATH, '"stale"')!.status, 200);
});

Deno.test("console assets: the ws path is escaped into the page", () => {
  const html = new TextDecoder().decode(new ConsoleAssets('/a"b<c').respond("/")!.body);
  assert.match(html, /content="\/a&#34;b&#60;c"/);
});
