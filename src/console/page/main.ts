/**
 * The console page: a person connects to a bridge (or an HA pair), publishes, subscribes and watches the
 * connection fail over. It is built on the SDK exactly as an application would be, and loads the SDK from
 * the bridge's own /sdk/edge-bridge.js, so using the console exercises the very file the bridge serves.
 * Every failure is shown next to the control that caused it, not only in the browser's developer console.
 */
import type * as Sdk from "../../client/mod.ts";
import { byId, clock, errorText, h, showError } from "./dom.ts";
import {
  defaultBridgeUrl,
  parseEncoding,
  parseFrom,
  parseOptionalInt,
  parsePositiveInt,
  parseTopic,
  parseUrls,
  parseValue,
} from "./inputs.ts";
import { SubscriptionCard } from "./subscription_card.ts";

/** A variable, not a literal: the bundler must leave this import to the browser, at run time. */
const SDK_URL = "/sdk/edge-bridge.js";
const MAX_LOG_ENTRIES = 1000;

const pageError = byId("page-error");
const logList = byId<HTMLOListElement>("log-entries");

function log(level: string, message: string, time: Date | number | string = Date.now()): void {
  const atBottom = logList.scrollTop + logList.clientHeight >= logList.scrollHeight - 4;
  logList.append(
    h(
      "li",
      { class: `log-${level}` },
      h("time", {}, clock(time)),
      " ",
      h("span", { class: "level" }, level),
      message,
    ),
  );
  while (logList.childElementCount > MAX_LOG_ENTRIES) logList.firstElementChild!.remove();
  if (atBottom) logList.scrollTop = logList.scrollHeight;
}

// Whatever escapes a handler still reaches the person.
globalThis.addEventListener("error", (e) => {
  showError(pageError, e.error ?? e.message);
  log("error", `page error: ${errorText(e.error ?? e.message)}`);
});
globalThis.addEventListener("unhandledrejection", (e) => {
  showError(pageError, e.reason);
  log("error", `unhandled: ${errorText(e.reason)}`);
});

let sdk: typeof Sdk;
try {
  sdk = await import(SDK_URL);
} catch (e) {
  showError(pageError, new Error(`could not load the SDK from ${SDK_URL}: ${errorText(e)}`));
  throw e;
}

// ---- connection ---------------------------------------------------------------------------------------

const urlsInput = byId<HTMLTextAreaElement>("urls");
const clientIdInput = byId<HTMLInputElement>("client-id");
const tokenInput = byId<HTMLInputElement>("token");
const connectButton = byId<HTMLButtonElement>("connect");
const disconnectButton = byId<HTMLButtonElement>("disconnect");
const connectError = byId("connect-error");
const badge = byId("status-badge");
const wsPath = document.querySelector<HTMLMetaElement>('meta[name="edge-bridge-ws-path"]')?.content ?? "/ws";
urlsInput.value = defaultBridgeUrl(location, wsPath.startsWith("/") ? wsPath : "/ws");

let client: Sdk.EdgeBridgeClient | undefined;
const cards = new Set<SubscriptionCard>();

function showState(s: Sdk.ConnectionState | undefined): void {
  const status = s?.status ?? "closed";
  const text = (v: unknown) => (v === undefined || v === null ? "–" : String(v));
  byId("state-status").textContent = status;
  byId("state-url").textContent = text(s?.url);
  byId("state-node").textContent = text(s?.node);
  byId("state-role").textContent = text(s?.role);
  byId("state-epoch").textContent = text(s?.epoch);
  byId("state-highest-epoch").textContent = text(s?.highestEpoch);
  byId("state-attempt").textContent = text(s?.attempt);
  badge.className = `badge ${status}`;
  badge.textContent = status === "open"
    ? `connected to ${s?.node ?? "?"} (epoch ${s?.epoch ?? "?"})`
    : status === "connecting"
    ? "connecting…"
    : "not connected";
}

function describeState(s: Sdk.ConnectionState): string {
  if (s.status === "open") return `open: ${s.url} (node ${s.node}, role ${s.role}, epoch ${s.epoch})`;
  if (s.status === "connecting") {
    return `connecting (attempt ${s.attempt}; highest epoch seen ${s.highestEpoch})`;
  }
  return "closed";
}

function setConnected(connected: boolean): void {
  connectButton.disabled = connected;
  disconnectButton.disabled = !connected;
  urlsInput.disabled = connected;
  clientIdInput.disabled = connected;
  tokenInput.disabled = connected;
}

byId<HTMLFormElement>("connect-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(connectError);
  let c: Sdk.EdgeBridgeClient;
  try {
    const urls = parseUrls(urlsInput.value);
    const clientId = clientIdInput.value.trim() || undefined;
    // The token goes in the first frame, never in the URL (which may end up in logs).
    const token = tokenInput.value.trim() || undefined;
    c = new sdk.EdgeBridgeClient({ urls, clientId, token });
    log("info", `connecting to ${urls.join(", ")}`);
  } catch (err) {
    showError(connectError, err);
    return;
  }
  client = c;
  setConnected(true);
  c.addEventListener("state", (ev) => {
    const s = (ev as CustomEvent<Sdk.ConnectionState>).detail;
    if (client === c) showState(s);
    log("state", describeState(s));
  });
  c.addEventListener("log", (ev) => {
    const { level, message, time } = (ev as CustomEvent<{ level: string; message: string; time: unknown }>)
      .detail;
    log(level, message, time as string);
  });
  showState(c.state);
  try {
    await c.ready();
  } catch (err) {
    if (client === c) showError(connectError, err);
  }
});

disconnectButton.addEventListener("click", async () => {
  const c = client;
  if (!c) return;
  client = undefined;
  setConnected(false);
  showError(connectError);
  log("info", "disconnecting");
  for (const card of cards) card.stop();
  try {
    await c.close({ timeoutMs: 5000 });
    log("info", "disconnected");
  } catch (err) {
    showError(connectError, err);
    log("error", `disconnect: ${errorText(err)}`);
  }
  showState(undefined);
});

/** The connected client, or an error that tells the person what to do. */
function connected(): Sdk.EdgeBridgeClient {
  if (!client) throw new Error("not connected: press Connect first");
  return client;
}

// ---- publish ------------------------------------------------------------------------------------------

const publishError = byId("publish-error");
const results = byId<HTMLOListElement>("publish-results");
let published = 0;

byId<HTMLFormElement>("publish-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  showError(publishError);
  let pending: Promise<Sdk.PublishAck>;
  let topic: string;
  try {
    const c = connected();
    topic = parseTopic(byId<HTMLInputElement>("pub-topic").value);
    const encoding = parseEncoding(byId<HTMLSelectElement>("pub-encoding").value, "Encoding");
    const value = parseValue(byId<HTMLTextAreaElement>("pub-value").value, encoding);
    const keyText = byId<HTMLInputElement>("pub-key").value;
    const partition = parseOptionalInt(byId<HTMLInputElement>("pub-partition").value, "Partition");
    pending = c.publish(topic, value, {
      key: keyText === "" ? undefined : keyText,
      partition,
      encoding,
    });
  } catch (err) {
    showError(publishError, err);
    return;
  }
  const n = ++published;
  const verdict = h("span", { class: "verdict" }, "sending…");
  const detail = h("span", { class: "detail" });
  const item = h(
    "li",
    { class: "pending", "data-publish": String(n) },
    `#${n} ${topic} `,
    verdict,
    " ",
    detail,
  );
  results.prepend(item);
  try {
    const ack = await pending;
    item.className = "ack";
    item.dataset.epoch = String(ack.epoch);
    verdict.textContent = "ack";
    detail.textContent = `partition ${ack.partition} offset ${ack.offset} epoch ${ack.epoch}` +
      (ack.duplicate ? " (duplicate: already written before a reconnect)" : "");
  } catch (err) {
    item.className = "nack";
    verdict.textContent = "nack";
    detail.textContent = errorText(err);
  }
});

// ---- subscribe ----------------------------------------------------------------------------------------

const subscribeError = byId("subscribe-error");
const groupInput = byId<HTMLInputElement>("sub-group");
const fromSelect = byId<HTMLSelectElement>("sub-from");
const offsetsInput = byId<HTMLInputElement>("sub-offsets");
const timestampInput = byId<HTMLInputElement>("sub-timestamp");

function mode(): "broadcast" | "group" {
  return document.querySelector<HTMLInputElement>('input[name="mode"]:checked')?.value === "group"
    ? "group"
    : "broadcast";
}

function syncSubscribeForm(): void {
  groupInput.disabled = mode() !== "group";
  offsetsInput.disabled = fromSelect.value !== "offsets";
  timestampInput.disabled = fromSelect.value !== "timestamp";
}
for (const radio of document.querySelectorAll('input[name="mode"]')) {
  radio.addEventListener("change", syncSubscribeForm);
}
fromSelect.addEventListener("change", syncSubscribeForm);
syncSubscribeForm();

byId<HTMLFormElement>("subscribe-form").addEventListener("submit", (e) => {
  e.preventDefault();
  showError(subscribeError);
  try {
    const c = connected();
    const topic = parseTopic(byId<HTMLInputElement>("sub-topic").value);
    const m = mode();
    const group = m === "group" ? parseTopic(groupInput.value, "Group name") : undefined;
    const from = parseFrom(fromSelect.value, offsetsInput.value, timestampInput.value);
    const credit = parsePositiveInt(byId<HTMLInputElement>("sub-credit").value, "Credit");
    const encoding = parseEncoding(byId<HTMLSelectElement>("sub-encoding").value, "Encoding");
    const card = new SubscriptionCard(c, { topic, mode: m, group, from, credit, encoding }, log);
    cards.add(card);
    card.onEnd = () => cards.delete(card);
    byId("subscriptions").prepend(card.element);
  } catch (err) {
    showError(subscribeError, err);
  }
});

byId("clear-log").addEventListener("click", () => logList.replaceChildren());
log("info", `console loaded; the SDK came from ${new URL(SDK_URL, location.href).href}`);
