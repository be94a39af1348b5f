import assert from "node:assert/strict";
import {
  defaultBridgeUrl,
  displayValue,
  InputError,
  parseEncoding,
  parseFrom,
  parseOptionalInt,
  parsePositiveInt,
  parseTopic,
  parseUrls,
  parseValue,
} from "./inputs.ts";

Deno.test("console inputs: the default bridge URL follows the page's scheme and host", () => {
  assert.equal(
    defaultBridgeUrl({ protocol: "http:", host: "127.0.0.1:8080" }, "/ws"),
    "ws://127.0.0.1:8080/ws",
  );
  assert.equal(
    defaultBridgeUrl({ protocol: "https:", host: "edge.example" }, "/bridge"),
    "wss://edge.example/bridge",
  );
});

Deno.test("console inputs: bridge URLs are split on lines, commas and spaces, and must be ws or wss", () => {
  assert.deepEqual(parseUrls(" ws://a:1/ws\nwss://b/ws ,ws://c:3/ws\n\n"), [
    "ws://a:1/ws",
    "wss://b/ws",
    "ws://c:3/ws",
  ]);
  assert.throws(() => parseUrls(" \n "), /enter at least one URL/);
  assert.throws(() => parseUrls("http://a:1/ws"), /"http:\/\/a:1\/ws" must start with ws:\/\/ or wss:\/\//);
  assert.throws(() => parseUrls("localhost:8080"), InputError);
  assert.throws(() => parseUrls("not a url"), /"not" is not a URL/);
});

Deno.test("console inputs: topic, encoding and numbers", () => {
  assert.equal(parseTopic("  orders "), "orders");
  assert.throws(() => parseTopic("  "), /Topic: enter a topic name/);
  assert.equal(parseEncoding("json", "Encoding"), "json");
  assert.throws(() => parseEncoding("latin1", "Encoding"), /"latin1" is not one of utf8, json, base64/);
  assert.equal(parseOptionalInt("", "Partition"), undefined);
  assert.equal(parseOptionalInt(" 3 ", "Partition"), 3);
  assert.throws(() => parseOptionalInt("-1", "Partition"), /Partition: "-1" is not a whole number/);
  assert.throws(() => parseOptionalInt("1.5", "Partition"), /not a whole number/);
  assert.throws(() => parseOptionalInt("99999999999999999999", "Partition"), /not a whole number/);
  assert.equal(parsePositiveInt("10", "Credit"), 10);
  assert.throws(() => parsePositiveInt("0", "Credit"), /Credit: enter a whole number of 1 or more/);
  assert.throws(() => parsePositiveInt("", "Credit"), /Credit: enter a whole number of 1 or more/);
});

Deno.test("console inputs: a value is checked against its encoding", () => {
  assert.equal(parseValue('{"a":1}', "utf8"), '{"a":1}');
  assert.deepEqual(parseValue('{"a":[1,2]}', "json"), { a: [1, 2] });
  assert.equal(parseValue("42", "json"), 42);
  assert.throws(() => parseValue("{a:1}", "json"), /Value: not valid JSON for the json encoding/);
  assert.equal(parseValue("aGVs\nbG8=", "base64"), "aGVsbG8=");
  assert.throws(() => parseValue("aGVsbG8", "base64"), /not standard base64/);
  assert.throws(() => parseValue("aGVs!G8=", "base64"), /not standard base64/);
});

Deno.test("console inputs: where a subscription starts", () => {
  assert.equal(parseFrom("earliest", "", ""), "earliest");
  assert.equal(parseFrom("latest", "junk", "junk"), "latest", "the unused fields are ignored");
  assert.deepEqual(parseFrom("offsets", "0:42, 1:007\n2:0", ""), {
    offsets: { "0": "42", "1": "7", "2": "0" },
  });
  assert.throws(() => parseFrom("offsets", "", ""), /Offsets: enter partition:offset pairs/);
  assert.throws(() => parseFrom("offsets", "0=42", ""), /Offsets: "0=42" is not partition:offset/);
  assert.throws(() => parseFrom("offsets", "0:1,0:2", ""), /partition 0 is named twice/);
  assert.deepEqual(parseFrom("timestamp", "", "1764403200000"), { timestamp: 1764403200000 });
  assert.deepEqual(parseFrom("timestamp", "", "2025-01-31T12:00:00Z"), {
    timestamp: Date.UTC(2025, 0, 31, 12),
  });
  assert.throws(() => parseFrom("timestamp", "", "yesterday"), /"yesterday" is neither milliseconds/);
  assert.throws(() => parseFrom("timestamp", "", ""), /Timestamp: enter milliseconds/);
  assert.throws(() => parseFrom("sometime", "", ""), /From: "sometime" is not one of/);
});

Deno.test("console inputs: values are displayed as text", () => {
  assert.equal(displayValue("hello", "utf8"), "hello");
  assert.equal(displayValue({ a: 1 }, "json"), '{"a":1}');
  assert.equal(displayValue("text", "json"), '"text"');
  assert.equal(displayValue(null, "utf8"), "(null)");
  assert.equal(displayValue(new Uint8Array(3), "base64"), "(3 bytes)");
});
