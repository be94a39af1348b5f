/**
 * Real headless Chromium for the browser tests: Debian's `chromium`, driven by npm:playwright-core.
 * scripts/test.sh installs chromium; CHROMIUM_PATH overrides where it is.
 */
import { type Browser, chromium, type Page } from "playwright-core";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";

/** How long a test waits for anything a page is expected to show. */
export const WAIT_MS = 30_000;

export async function launchChromium(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: run scripts/test.sh (it installs it) or set CHROMIUM_PATH`);
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
}

/** A page under test, with every uncaught error and console error it had, so the test can fail on them. */
export interface WatchedPage {
  page: Page;
  name: string;
  problems: string[];
}

/**
 * A new page that records its page errors and console errors in `problems`; console errors whose text
 * matches `expected` are not problems (a test that takes a node down expects refused WebSockets).
 */
export async function watchedPage(browser: Browser, name: string, expected?: RegExp): Promise<WatchedPage> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems: string[] = [];
  page.on("pageerror", (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !expected?.test(m.text())) {
      problems.push(`${name}: console error: ${m.text()}`);
    }
  });
  return { page, name, problems };
}

/**
 * Saves each page's screenshot and text for a failed test, and says where; prints the errors the pages
 * had, since a failure that is a timeout often began as one of them.
 */
export async function saveEvidence(pages: WatchedPage[]): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "edge-bridge-browser-" });
  for (const { page, name, problems } of pages) {
    for (const p of problems) console.error(p);
    try {
      await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
      await Deno.writeTextFile(`${dir}/${name}.txt`, await page.locator("body").innerText());
    } catch (e) {
      console.error(`could not save page ${name}: ${(e as Error).message}`);
    }
  }
  console.error(
    `browser test failed: screenshots and page text of ${pages.map((p) => p.name)} are in ${dir}`,
  );
}
