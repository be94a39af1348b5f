import assert from "node:assert/strict";
import { ConsumeTally, label, LONGEST_LABEL, messageNumber, numberedValue } from "./numbered.ts";

Deno.test("numberedValue pads to the size and keeps the number first", () => {
  assert.equal(numberedValue(7), "hello 7");
  assert.equal(numberedValue(7, 3), "hello 7", "never shorter than its label");
  assert.equal(numberedValue(7, 7), "hello 7");
  assert.equal(numberedValue(7, 8), "hello 7 ");
  const v = numberedValue(123, 1000);
  assert.equal(new TextEncoder().encode(v).length, 1000);
  assert.equal(messageNumber(v), 123);
  assert.equal(label(123), "hello 123");
  assert.equal(LONGEST_LABEL, "hello 9007199254740991".length);
});

Deno.test("messageNumber reads produce's values only", () => {
  assert.equal(messageNumber("hello 42"), 42);
  assert.equal(messageNumber("hello 42 ...."), 42);
  assert.equal(messageNumber("hello 42x"), undefined);
  assert.equal(messageNumber("hello 0"), undefined);
  assert.equal(messageNumber("hello"), undefined);
  assert.equal(messageNumber("bye 3"), undefined);
  assert.equal(messageNumber({ n: 3 }), undefined);
  assert.equal(messageNumber("hello 99999999999999999999"), undefined);
});

Deno.test("ConsumeTally counts repeats of a position or a number once, and missing numbers", () => {
  const t = new ConsumeTally();
  assert.equal(t.summary(), "received 0, duplicates 0, gaps 0");
  assert.equal(t.add(0, "0", "hello 1"), false);
  assert.equal(t.add(1, "0", "hello 2"), false);
  assert.equal(t.add(0, "1", "hello 5"), false);
  assert.equal(t.add(0, "1", "hello 5"), true, "same position");
  assert.equal(t.add(1, "1", "hello 2"), true, "same number written twice");
  assert.equal(t.add(1, "1", "other"), true, "same position, value not numbered");
  assert.equal(t.add(1, "2", "other"), false);
  assert.equal(t.summary(), "received 7, duplicates 3, gaps 2"); // 3 and 4 never came
});

Deno.test("ConsumeTally: gaps count from the lowest number seen, not from 1", () => {
  const t = new ConsumeTally();
  for (const [i, n] of [57, 58, 60].entries()) t.add(0, String(i), `hello ${n}`);
  assert.equal(t.gaps, 1);
});
