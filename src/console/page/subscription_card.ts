/**
 * One subscription on the console page: a card with its messages as they arrive, a button to grant more
 * credit, a Commit button per message in group mode, and a Close button. What ends the subscription (the
 * person, the bridge, a refusal) is shown on the card.
 *
 * Credit works as the protocol says: the page takes `credit` messages, then waits for the person to grant
 * more. The SDK grants the bridge credit back only as the page takes messages, so while the page waits the
 * bridge stops sending once the SDK's window (the same `credit`) is full.
 */
import type * as Sdk from "../../client/mod.ts";
import { clock, errorText, h, showError } from "./dom.ts";
import { displayValue, type Encoding, type From, parsePositiveInt } from "./inputs.ts";

export interface CardOptions {
  topic: string;
  mode: "broadcast" | "group";
  group?: string;
  from: From;
  credit: number;
  encoding: Encoding;
}

const MAX_MESSAGES_SHOWN = 500;
let cards = 0;

function describeFrom(from: From): string {
  if (typeof from === "string") return from;
  if ("timestamp" in from) return `time ${new Date(from.timestamp).toISOString()}`;
  return `offsets ${Object.entries(from.offsets).map(([p, o]) => `${p}:${o}`).join(", ")}`;
}

export class SubscriptionCard {
  readonly element: HTMLElement;
  onEnd?: () => void;
  readonly #sub: Sdk.Subscription;
  readonly #status: HTMLElement;
  readonly #error: HTMLElement;
  readonly #messages: HTMLOListElement;
  readonly #count: HTMLElement;
  readonly #log: (level: string, message: string) => void;
  readonly #title: string;
  #received = 0;
  /** Messages the page may still take before the person grants more. */
  #allowance: number;
  #resume?: () => void;
  /** Closed by the person, or the client went away: stop waiting for credit and let the iteration end. */
  #stopping = false;

  constructor(
    client: Sdk.EdgeBridgeClient,
    readonly options: CardOptions,
    log: (l: string, m: string) => void,
  ) {
    const n = ++cards;
    this.#log = log;
    const { topic, mode, group, from, credit, encoding } = options;
    this.#title = `${topic} (${mode === "group" ? `group ${group}` : "broadcast"})`;
    this.#allowance = credit;
    this.#sub = client.subscribe(topic, { mode, group, from, credit, encoding });

    this.#status = h("p", { class: "sub-status", role: "status" }, "subscribing…");
    this.#error = h("p", { class: "error", role: "alert", hidden: "" });
    this.#count = h("span", { class: "count" }, "0");
    this.#messages = h("ol", { class: "messages", "aria-label": `messages of ${this.#title}` });
    const creditId = `credit-${n}`;
    const creditInput = h("input", {
      id: creditId,
      type: "number",
      min: "1",
      step: "1",
      value: String(credit),
    });
    const grantButton = h("button", { type: "button", class: "secondary" }, "Grant credit");
    const closeButton = h("button", { type: "button", class: "secondary" }, "Close subscription");
    grantButton.addEventListener("click", () => {
      showError(this.#error);
      try {
        const more = parsePositiveInt(creditInput.value, "Credit");
        this.#allowance += more;
        this.#resume?.();
        this.#log("info", `${this.#title}: granted ${more} more credit`);
      } catch (e) {
        showError(this.#error, e);
      }
    });
    closeButton.addEventListener("click", async () => {
      showError(this.#error);
      closeButton.disabled = true;
      this.#status.textContent = "closing…";
      this.stop();
      try {
        await this.#sub.close();
      } catch (e) {
        showError(this.#error, e);
      }
    });
    this.#sub.addEventListener("skipped", (e) => {
      const s = e.detail;
      this.#messages.append(
        h(
          "li",
          { class: "skipped" },
          `partition ${s.partition}: offsets ${s.from} to ${s.to} skipped: ${s.reason}`,
        ),
      );
    });

    this.element = h(
      "article",
      { class: "subscription", "data-topic": topic, "aria-label": `subscription ${this.#title}` },
      h("h3", {}, this.#title),
      h(
        "p",
        { class: "sub-status" },
        `from ${describeFrom(from)}, credit ${credit}, ${encoding}; `,
        this.#count,
        " received",
      ),
      this.#status,
      h(
        "div",
        { class: "buttons" },
        h("label", { for: creditId, class: "inline" }, "Credit to grant"),
        creditInput,
        grantButton,
        closeButton,
      ),
      this.#error,
      this.#messages,
    );
    this.#sub.ready().then(
      () => (this.#status.textContent = "subscribed"),
      () => {/* the message loop reports why */},
    );
    void this.#read();
  }

  /** The subscription is ending (closed here, or its client was closed): take what is left and finish. */
  stop(): void {
    this.#stopping = true;
    this.#resume?.();
  }

  async #read(): Promise<void> {
    const messages = this.#sub[Symbol.asyncIterator]();
    try {
      while (true) {
        if (this.#allowance === 0 && !this.#stopping) {
          this.#status.textContent = "credit used up: grant credit to receive more";
          await new Promise<void>((r) => (this.#resume = r));
          this.#resume = undefined;
          if (this.#status.textContent?.startsWith("credit used up")) this.#status.textContent = "subscribed";
          continue;
        }
        const next = await messages.next();
        if (next.done) break;
        this.#allowance--;
        this.#show(next.value);
      }
      this.#status.textContent = "closed";
      this.#log("info", `${this.#title}: subscription closed`);
    } catch (e) {
      this.#status.textContent = "ended";
      showError(this.#error, e);
      this.#log("error", `${this.#title}: ${errorText(e)}`);
    } finally {
      this.onEnd?.();
    }
  }

  #show(m: Sdk.Message): void {
    this.#received++;
    this.#count.textContent = String(this.#received);
    const key = m.key === null ? "" : `key ${displayValue(m.key, m.keyEncoding)} `;
    const item = h(
      "li",
      { class: "message", "data-partition": String(m.partition), "data-offset": String(m.offset) },
      h(
        "span",
        { class: "pos" },
        `${clock(Number(m.timestamp))} partition ${m.partition} offset ${m.offset}: `,
      ),
      key,
      h("span", { class: "value" }, displayValue(m.value, m.encoding)),
    );
    if (this.options.mode === "group") {
      const commit = h("button", { type: "button", class: "secondary" }, "Commit");
      const outcome = h("span", { class: "commit-outcome" });
      commit.addEventListener("click", async () => {
        commit.disabled = true;
        outcome.textContent = " committing…";
        try {
          await this.#sub.commit(m);
          outcome.textContent = " committed";
        } catch (e) {
          commit.disabled = false;
          outcome.textContent = ` commit failed: ${errorText(e)}`;
          outcome.className = "commit-outcome error";
        }
      });
      item.append(commit, outcome);
    }
    this.#messages.append(item);
    while (this.#messages.childElementCount > MAX_MESSAGES_SHOWN) this.#messages.firstElementChild!.remove();
  }
}
