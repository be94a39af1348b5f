/**
 * The browser example in docs/client.md ("## In a browser") runs as written, in real headless Chromium
 * against a real bridge and Kafka. The page is read from the docs at test time, so the docs cannot change
 * without the example still working; only the bridge's address and the topic are swapped for the test's.
 * The page is served from an origin of its own (another port), as a person's page would be, so the
 * cross-origin import of the SDK from the bridge is what runs.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { BridgeProcess } from "./helpers/bridge.ts";
import { launchChromium, saveEvidence, WAIT_MS, type WatchedPage, watchedPage } from "./helpers/browser.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatProduce, kcatRead, recordsByPosition } from "./helpers/kcat.ts";

const DOCS = new URL("../docs/client.md", import.meta.url);
const SECTION = "## In a browser";
/** Where the docs' page expects the bridge: `deno task start`'s default. */
const DOCS_BRIDGE = "127.0.0.1:8080";
const DOCS_TOPIC = `"test"`;

/** The ```html block of the section, exactly as the docs show it. */
async function docsPage(): Promise<string> {
  const md = await Deno.readTextFile(DOCS);
  const start = md.indexOf(`\n${SECTION}\n`);
  assert.ok(start >= 0, `docs/client.md has no "${SECTION}" section`);
  const next = md.indexOf("\n## ", start + 1);
  const section = md.slice(start, next < 0 ? undefined : next);
  const blocks = [...section.matchAll(/^```html\n([\s\S]*?)^```$/gm)];
  assert.equal(blocks.length, 1, `"${SECTION}" in docs/client.md should hold one html block`);
  return blocks[0][1];
}

/** Replaces every `from` in `text`, insisting it occurs `count` times (so a docs change is noticed here). */
function replaceExactly(text: string, from: string, to: string, count: number): string {
  const found = text.split(from).length - 1;
  assert.equal(found, count, `the docs' page should name ${from} ${count} times, found ${found}`);
  return text.replaceAll(from, to);
}

/**
 * Serves `html()` at / from 127.0.0.1 on a port of its own (made when asked for, so the bridge can be
 * started after the page's origin is known). Chromium asks for /favicon.ico by itself and logs a 404 as a
 * console error: it gets an empty answer. Every other path is a 404.
 */
function servePage(html: () => string) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    if (path !== "/") return new Response("not found", { status: 404 });
    return new Response(html(), { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  return { server, requests, origin: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("docs: the browser example in docs/client.md publishes and shows the message, from another origin", async () => {
  const topic = uniqueTopic("docs-example");
  await createTopics([{ name: topic, partitions: 2 }]);
  // Records from before the page opened: it subscribes from "latest", so it must not show them.
  await kcatProduce(topic, ["before the page, partition 0"], { partition: 0 });
  await kcatProduce(topic, ["before the page, partition 1"], { partition: 1 });
  const docs = await docsPage();
  let html = "";
  const site = servePage(() => html);
  // As the docs say: the page's origin is allowed in the bridge's config.
  const bridge = await BridgeProcess.start({
    env: { EDGE_BRIDGE_NODE_ID: "docs" },
    set: [`server.allowedOrigins=${site.origin}`],
  });
  let browser: Browser | undefined;
  const pages: WatchedPage[] = [];
  try {
    html = replaceExactly(
      replaceExactly(docs, DOCS_BRIDGE, `127.0.0.1:${bridge.port}`, 2),
      DOCS_TOPIC,
      JSON.stringify(topic),
      2,
    );
    assert.notEqual(site.origin, bridge.httpUrl, "the page and the SDK come from different origins");
    browser = await launchChromium();
    const p = await watchedPage(browser, "docs-example");
    pages.push(p);
    const { page } = p;
    const sdkResponses: { url: string; status: number; cors: string | undefined }[] = [];
    page.on("response", (r) => {
      if (r.url().startsWith(bridge.httpUrl)) {
        sdkResponses.push({
          url: r.url(),
          status: r.status(),
          cors: r.headers()["access-control-allow-origin"],
        });
      }
    });
    await page.goto(`${site.origin}/`);
    await page.locator("#status", { hasText: /^open docs$/ }).waitFor({ timeout: WAIT_MS });
    assert.deepEqual(
      sdkResponses,
      [{ url: `${bridge.httpUrl}/sdk/edge-bridge.js`, status: 200, cors: "*" }],
      "the page imported the SDK across origins from the bridge",
    );

    await page.getByRole("button", { name: "publish", exact: true }).click();
    const out = page.locator("#out");
    await out.filter({ hasText: /^acked \d+@\d+$/m }).waitFor({ timeout: WAIT_MS });
    const acked = /^acked (\d+)@(\d+)$/m.exec((await out.textContent()) ?? "")!;
    const [partition, offset] = [Number(acked[1]), acked[2]];
    const line = new RegExp(`^${partition}@${offset} (hello from the browser at \\S+)$`, "m");
    await out.filter({ hasText: line }).waitFor({ timeout: WAIT_MS });
    const text = (await out.textContent()) ?? "";
    const value = line.exec(text)![1];
    assert.match(value, /^hello from the browser at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(
      text.split("\n").filter((l) => l).sort(),
      [`${partition}@${offset} ${value}`, `acked ${partition}@${offset}`],
      "the page shows the ack and the message, nothing from before it opened, no refusal",
    );

    const record = recordsByPosition(await kcatRead(topic, undefined, 3))(partition, offset);
    assert.equal(record?.payload, value, `Kafka holds the published record at ${partition}@${offset}`);
    assert.deepEqual(site.requests.filter((r) => r !== "/favicon.ico"), ["/"]);
    assert.deepEqual(p.problems, [], "no page errors");
    console.log(`docs example: ${text.trim().replaceAll("\n", " | ")}`);
  } catch (e) {
    await saveEvidence(pages);
    throw e;
  } finally {
    await browser?.close();
    await site.server.shutdown();
    await bridge.stop();
  }
});
