/** Small DOM helpers for the console page: find elements, build them, and show errors where they happen. */

/** The element with `id`, of the expected kind; a missing one is a bug in index.html, said plainly. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the console page has no element #${id}`);
  return el as T;
}

type Child = Node | string | undefined;

/** An element with attributes (`class`, `data-*`, aria, ...) and children; undefined children are skipped. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined) el.setAttribute(name, value);
  for (const c of children) if (c !== undefined) el.append(c);
  return el;
}

/** A printable account of an error, with the SDK's code and whether the record may have been written. */
export function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const fields = e as Error & { code?: unknown; maybeWritten?: unknown };
  const code = typeof fields.code === "string" ? `${fields.code}: ` : "";
  const written = fields.maybeWritten === true
    ? " (the record may have been written)"
    : fields.maybeWritten === false
    ? " (the record was not written)"
    : "";
  return `${code}${e.message}${written}`;
}

/** Shows `e` in the error paragraph `el`, or hides it when `e` is undefined. */
export function showError(el: HTMLElement, e?: unknown): void {
  el.hidden = e === undefined;
  el.textContent = e === undefined ? "" : errorText(e);
}

/** Wall-clock time as HH:MM:SS.mmm, for the log and message lists. */
export function clock(time: Date | number | string = Date.now()): string {
  const d = new Date(time);
  return Number.isNaN(d.getTime()) ? String(time) : d.toISOString().slice(11, 23);
}
