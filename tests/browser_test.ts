/**
 * The console page in real headless Chromium (tests/helpers/browser.ts), against real bridges and Kafka.
 * The page is driven only through what a person uses: labelled inputs and buttons. On failure each page's
 * screenshot and text is saved and its path printed.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import { BridgeProcess } from "./helpers/bridge.ts";
import { launchChromium, saveEvidence, WAIT_MS, watchedPage } from "./helpers/browser.ts";
import { HaCluster } from "./helpers/ha.ts";
import { createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";

/** A console page with every uncaught error it had, so the test can fail on them. */
async function openConsole(browser: Browser, url: string, name: string) {
  // Chromium reports each refused WebSocket as a console error: expected while a node is down.
  const watched = await watchedPage(browser, name, /^WebSocket connection to .* failed/);
  await watched.page.goto(url);
  await watched.page.getByText("console loaded").waitFor({ timeout: WAIT_MS });
  return watched;
}

type ConsolePage = Awaited<ReturnType<typeof openConsole>>;

async function connect({ page }: ConsolePage, urls: string[], node: string): Promise<void> {
  await page.getByLabel("Bridge URLs").fill(urls.join("\n"));
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await waitForNode(page, node);
}

/** Waits until the page's status badge says it is connected to `node` (it says so only while open). */
async function waitForNode(page: Page, node: string): Promise<void> {
  await page.locator("#status-badge", { hasText: new RegExp(`^connected to ${node} \\(epoch \\d+\\)$`) })
    .waitFor({ timeout: WAIT_MS });
}

/** Publishes through the form; returns the result line once it says ack or nack. */
async function publish({ page }: ConsolePage, topic: string, value: string) {
  const form = page.locator("#publish-form");
  await form.getByLabel("Topic", { exact: true }).fill(topic);
  await form.getByLabel("Value", { exact: true }).fill(value);
  const before = await page.locator("#publish-results li").count();
  await form.getByRole("button", { name: "Publish", exact: true }).click();
  const item = page.locator(`#publish-results li[data-publish="${before + 1}"]`);
  await item.locator(".verdict", { hasText: /^(ack|nack)$/ }).waitFor({ timeout: WAIT_MS });
  return {
    verdict: await item.locator(".verdict").textContent(),
    text: (await item.textContent()) ?? "",
    epoch: Number(await item.getAttribute("data-epoch")),
  };
}

/** The values in a subscription card's message list, in the order shown. */
function messageValues({ page }: ConsolePage, topic: string): Promise<string[]> {
  return page.locator(`article.subscription[data-topic="${topic}"] li.message .value`).allTextContents();
}

async function waitForMessage(p: ConsolePage, topic: string, value: string): Promise<void> {
  await p.page.locator(`article.subscription[data-topic="${topic}"] li.message .value`, { hasText: value })
    .first().waitFor({ timeout: WAIT_MS });
}

Deno.test("browser: the bridge serves the console page and the SDK bundle", async () => {
  const bridge = await BridgeProcess.start();
  try {
    const page = await fetch(`${bridge.httpUrl}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(await page.text(), /<meta name="edge-bridge-ws-path" content="\/ws">/);
    const sdk = await fetch(`${bridge.httpUrl}/sdk/edge-bridge.js`);
    assert.equal(sdk.status, 200);
    assert.equal(sdk.headers.get("content-type"), "text/javascript; charset=utf-8");
    assert.equal(sdk.headers.get("cache-control"), "no-cache");
    assert.match(await sdk.text(), /EdgeBridgeClient/);
    const again = await fetch(`${bridge.httpUrl}/sdk/edge-bridge.js`, {
      headers: { "if-none-match": sdk.headers.get("etag")! },
    });
    assert.equal(again.status, 304, "an unchanged SDK is not sent again");
    await again.body?.cancel();
    const head = await fetch(`${bridge.httpUrl}/console/console.js`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), "text/javascript; charset=utf-8");
    const missing = await fetch(`${bridge.httpUrl}/nope`);
    assert.equal(missing.status, 404);
    assert.match((await missing.json()).error, /no route \/nope; try \/ \(the console\)/);
  } finally {
    await bridge.stop();
  }
});

Deno.test({
  name:
    "browser: two console pages publish and subscribe through a kill -9 failover, nothing lost or doubled",
  // Playwright keeps its pipe to Chromium and timers of its own between calls.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const topic = uniqueTopic("browser");
    await createTopics([{ name: topic, partitions: 2 }]);
    const ha = new HaCluster("file-lock", [{ name: "a", priority: 200 }, { name: "b", priority: 100 }], [
      "ha.allowFailback=false",
    ]);
    // The pages come from a's console and fail over to b: the pair's consoles are each other's allowed origins.
    ha.set.push(
      `server.allowedOrigins=${
        ["a", "b"].map((n) => new URL(ha.url(n).replace(/^ws:/, "http:")).origin).join(",")
      }`,
    );
    let browser: Browser | undefined;
    const pages: ConsolePage[] = [];
    try {
      await ha.start("a");
      await ha.waitRole("a", "live");
      await ha.start("b");
      await ha.waitRole("b", "backup");
      browser = await launchChromium();
      const consoleUrl = `${ha.bridge("a").httpUrl}/`;
      const a = await openConsole(browser, consoleUrl, "subscriber");
      const b = await openConsole(browser, consoleUrl, "publisher");
      pages.push(a, b);
      assert.equal(
        await a.page.getByLabel("Bridge URLs").inputValue(),
        ha.url("a"),
        "the page offers the bridge that served it",
      );
      const urls = [ha.url("a"), ha.url("b")];
      await connect(a, urls, "a");
      await connect(b, urls, "a");

      // A subscribes, broadcast from earliest, through the form.
      const form = a.page.locator("#subscribe-form");
      await form.getByLabel("Topic", { exact: true }).fill(topic);
      await form.getByRole("radio", { name: /broadcast/ }).check();
      await form.getByLabel("From", { exact: true }).selectOption("earliest");
      await form.getByRole("button", { name: "Subscribe", exact: true }).click();
      const card = a.page.locator(`article.subscription[data-topic="${topic}"]`);
      await card.getByText("subscribed", { exact: true }).waitFor({ timeout: WAIT_MS });

      const first = await publish(b, topic, "before the failover");
      assert.equal(first.verdict, "ack", first.text);
      await waitForMessage(a, topic, "before the failover");

      await ha.stop("a", "SIGKILL");
      // Published while no node is live: the SDK holds it and sends it to the new live.
      const second = await publish(b, topic, "after the failover");
      assert.equal(second.verdict, "ack", second.text);
      assert.ok(second.epoch > first.epoch, `the ack after failover has a higher epoch: ${second.text}`);
      await waitForNode(b.page, "b");
      await waitForNode(a.page, "b");
      await waitForMessage(a, topic, "after the failover");

      const third = await publish(b, topic, "on the new live");
      assert.equal(third.verdict, "ack", third.text);
      await waitForMessage(a, topic, "on the new live");

      // Every message exactly once: wait for Kafka to hold all three, then compare with what A shows.
      const inKafka = await kcatRead(topic, undefined, 3);
      const payloads = inKafka.map((r) => r.payload).sort();
      assert.deepEqual(payloads, ["after the failover", "before the failover", "on the new live"]);
      const shown = await messageValues(a, topic);
      assert.deepEqual([...shown].sort(), payloads, `A shows each message once: ${JSON.stringify(shown)}`);

      // The person saw the failover happen: the badge names the new node, the log tells the story.
      assert.match((await a.page.locator("#status-badge").textContent()) ?? "", /connected to b/);
      const log = await a.page.locator("#log-entries").innerText();
      assert.match(log, /open: .*node a/);
      assert.match(log, /connecting/);
      assert.match(log, new RegExp(`open: ${ha.url("b").replaceAll("/", "\\/")} \\(node b, role live`));
      assert.deepEqual([...a.problems, ...b.problems], [], "no page errors");
      console.log(
        `browser: acks at epochs ${first.epoch} -> ${second.epoch}; A shows ${JSON.stringify(shown)}`,
      );
    } catch (e) {
      await saveEvidence(pages);
      throw e;
    } finally {
      await browser?.close();
      await ha.close();
    }
  },
});

Deno.test({
  name: "browser: group mode with credit and commit, and errors shown where they happen",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const topic = uniqueTopic("browser-group");
    await createTopics([{ name: topic, partitions: 1 }]);
    const bridge = await BridgeProcess.start({ env: { EDGE_BRIDGE_NODE_ID: "solo" } });
    let browser: Browser | undefined;
    const pages: ConsolePage[] = [];
    try {
      browser = await launchChromium();
      const p = await openConsole(browser, `${bridge.httpUrl}/`, "group");
      pages.push(p);
      const { page } = p;

      // Before connecting, a publish says what to do, next to the form.
      await page.locator("#publish-form").getByLabel("Topic", { exact: true }).fill(topic);
      await page.getByRole("button", { name: "Publish", exact: true }).click();
      await page.locator("#publish-error", { hasText: "not connected: press Connect first" }).waitFor();
      await connect(p, [bridge.url], "solo");

      // A value that is not JSON, with the json encoding: refused in the form, nothing sent.
      await page.locator("#publish-form").getByLabel("Encoding").selectOption("json");
      await page.getByLabel("Value", { exact: true }).fill("{not json");
      await page.getByRole("button", { name: "Publish", exact: true }).click();
      await page.locator("#publish-error", { hasText: "Value: not valid JSON" }).waitFor();
      assert.equal(await page.locator("#publish-results li").count(), 0);
      await page.locator("#publish-form").getByLabel("Encoding").selectOption("utf8");

      // A topic Kafka does not have: the subscription's card says so.
      const form = page.locator("#subscribe-form");
      const missing = uniqueTopic("no-such-topic");
      await form.getByLabel("Topic", { exact: true }).fill(missing);
      await form.getByRole("button", { name: "Subscribe", exact: true }).click();
      await page.locator(`article.subscription[data-topic="${missing}"] .error`, { hasText: "UNKNOWN_TOPIC" })
        .waitFor({ timeout: WAIT_MS });

      // Group mode, credit 2: the page shows two messages, then waits for the person to grant more.
      await form.getByLabel("Topic", { exact: true }).fill(topic);
      await form.getByRole("radio", { name: /group/ }).check();
      await form.getByLabel("Group name").fill(uniqueTopic("console"));
      await form.getByLabel("From", { exact: true }).selectOption("earliest");
      await form.getByLabel("Credit", { exact: false }).fill("2");
      await form.getByRole("button", { name: "Subscribe", exact: true }).click();
      const card = page.locator(`article.subscription[data-topic="${topic}"]`);
      await card.getByText("subscribed", { exact: true }).waitFor({ timeout: WAIT_MS });
      for (const v of ["one", "two", "three"]) assert.equal((await publish(p, topic, v)).verdict, "ack");
      await card.getByText("credit used up: grant credit to receive more").waitFor({ timeout: WAIT_MS });
      assert.deepEqual(await messageValues(p, topic), ["one", "two"]);
      await card.getByLabel("Credit to grant").fill("1");
      await card.getByRole("button", { name: "Grant credit" }).click();
      await waitForMessage(p, topic, "three");
      assert.deepEqual(await messageValues(p, topic), ["one", "two", "three"]);

      // Commit the last message: the bridge confirms it.
      const last = card.locator("li.message").nth(2);
      await last.getByRole("button", { name: "Commit" }).click();
      await last.getByText("committed", { exact: true }).waitFor({ timeout: WAIT_MS });
      assert.deepEqual(p.problems, [], "no page errors");
    } catch (e) {
      await saveEvidence(pages);
      throw e;
    } finally {
      await browser?.close();
      await bridge.stop();
    }
  },
});
