/**
 * The Origin allow-list (server.allowedOrigins), against a real bridge: in real headless Chromium a page
 * from an allowed origin connects and a page from another origin on the same machine (loopback, another
 * port) is refused with ORIGIN_NOT_ALLOWED and close code 4003, while the bridge's own page connects
 * without being listed. Clients that send no Origin (not browsers) are not checked.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
// @ts-types="npm:@types/ws@8.18.1"
import { WebSocket as NodeWebSocket } from "ws";
import { BridgeProcess } from "./helpers/bridge.ts";
import { launchChromium, saveEvidence, WAIT_MS, type WatchedPage, watchedPage } from "./helpers/browser.ts";
import { TestClient } from "./helpers/ws_client.ts";

/** A page that opens a WebSocket to `wsUrl` and writes each frame's op/code and the close code. */
function probePage(wsUrl: string): string {
  return `<!doctype html><meta charset="utf-8"><title>origin probe</title><pre id="out"></pre>
<script>
  const out = document.getElementById("out");
  const ws = new WebSocket(${JSON.stringify(wsUrl)});
  ws.onmessage = (e) => { const f = JSON.parse(e.data); out.textContent += f.op + (f.code ? " " + f.code : "") + "\\n"; };
  ws.onclose = (e) => { out.textContent += "closed " + e.code + "\\n"; };
</script>`;
}

/** Serves the probe page at / from 127.0.0.1 on a port of its own; the page is made when asked for. */
function serveProbe(page: () => string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const path = new URL(req.url).pathname;
    // Chromium asks for /favicon.ico by itself and logs a 404 as a console error.
    if (path === "/favicon.ico") return new Response(null, { status: 204 });
    if (path !== "/") return new Response(null, { status: 404 });
    return new Response(page(), { headers: { "content-type": "text/html; charset=utf-8" } });
  });
  return { server, origin: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test({
  name: "origin: in Chromium, an allowed origin and the bridge's own page connect, another origin is refused",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    let wsUrl = "";
    const allowed = serveProbe(() => probePage(wsUrl));
    const other = serveProbe(() => probePage(wsUrl));
    const bridge = await BridgeProcess.start({ set: [`server.allowedOrigins=${allowed.origin}`] });
    wsUrl = bridge.url;
    let browser: Browser | undefined;
    const pages: WatchedPage[] = [];
    try {
      browser = await launchChromium();
      const open = async (name: string, url: string) => {
        const p = await watchedPage(browser!, name);
        pages.push(p);
        await p.page.goto(url);
        return p;
      };
      const good = await open("allowed", `${allowed.origin}/`);
      await good.page.locator("#out", { hasText: /^welcome$/m }).waitFor({ timeout: WAIT_MS });

      const bad = await open("other", `${other.origin}/`);
      await bad.page.locator("#out", { hasText: /^closed 4003$/m }).waitFor({ timeout: WAIT_MS });
      assert.equal(await bad.page.locator("#out").textContent(), "error ORIGIN_NOT_ALLOWED\nclosed 4003\n");

      // The bridge's own page (its console, same origin) is always allowed, listed or not.
      const own = await open("own", `${bridge.httpUrl}/`);
      const seen = await own.page.evaluate((url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onmessage = (e) => (resolve(JSON.parse(e.data).op), ws.close());
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        }), bridge.url);
      assert.equal(seen, "welcome");

      assert.equal(await good.page.locator("#out").textContent(), "welcome\n", "the allowed page stays open");
      const refused = bridge.logs("origin refused");
      assert.equal(refused.length, 1, "logged once for the one refused connection");
      assert.equal(refused[0].origin, other.origin);
      const metrics = await (await fetch(`${bridge.httpUrl}/metrics`)).text();
      assert.match(metrics, /edge_bridge_connections_rejected_total\{reason="origin"\} 1/);
      for (const p of pages) assert.deepEqual(p.problems, [], `${p.name}: no page errors`);
    } catch (e) {
      await saveEvidence(pages);
      throw e;
    } finally {
      await browser?.close();
      await allowed.server.shutdown();
      await other.server.shutdown();
      await bridge.stop();
    }
  },
});

Deno.test({
  name: "origin: a client without Origin is served; a forged foreign Origin gets ORIGIN_NOT_ALLOWED and 4003",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const bridge = await BridgeProcess.start();
    try {
      const plain = await bridge.connect();
      assert.equal(plain.welcome?.op, "welcome");
      await plain.close();

      for (const origin of ["http://127.0.0.1:1", "http://evil.example", "null"]) {
        const socket = new NodeWebSocket(bridge.url, { origin });
        const c = await TestClient.connect(bridge.url, socket as unknown as WebSocket);
        const closed = await c.closed;
        assert.deepEqual(
          [c.frames.map((f) => [f.op, f.code, f.retryable]), closed.code, closed.reason],
          [[["error", "ORIGIN_NOT_ALLOWED", false]], 4003, "origin not allowed"],
          origin,
        );
      }
    } finally {
      await bridge.stop();
    }
  },
});
