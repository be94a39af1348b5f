import assert from "node:assert/strict";
import Encoder from "kafkajs/src/protocol/encoder.js";
import encodeRecord from "kafkajs/src/protocol/recordBatch/record/v0/index.js";
import { installVarintShim, originalWriteUVarInt } from "./varint_shim.ts";

type Enc = { buffer: Uint8Array; writeUVarInt(v: number): Enc; writeVarInt(v: number): Enc };
const newEncoder = () => new (Encoder as unknown as new () => Enc)();

Deno.test("varint shim: writes exactly the bytes kafkajs writes, for every width", () => {
  assert.equal(installVarintShim(), true, "kafkajs 2.2.4's writeUVarInt was recognised");
  const values = [
    0,
    1,
    127,
    128,
    255,
    300,
    16383,
    16384,
    2097151,
    2097152,
    268435455,
    268435456,
    2 ** 31 - 1,
  ];
  for (let v = 0; v < 70000; v += 97) values.push(v);
  for (const v of values) {
    const shimmed = newEncoder().writeUVarInt(v).buffer;
    const original = originalWriteUVarInt.call(newEncoder() as never, v) as unknown as Enc;
    assert.deepEqual([...shimmed], [...original.buffer], `value ${v}`);
  }
  // Signed varints (zigzag) go through writeUVarInt too: -1 -> 1, 1 -> 2, -65 -> 129 (two bytes).
  assert.deepEqual([...newEncoder().writeVarInt(-1).buffer], [1]);
  assert.deepEqual([...newEncoder().writeVarInt(-65).buffer], [0x81, 0x01]);
});

Deno.test("varint shim: kafkajs' own record encoder uses it (the same module instance)", () => {
  installVarintShim();
  const proto = (Encoder as unknown as { prototype: { writeUVarInt: (v: number) => unknown } }).prototype;
  const shim = proto.writeUVarInt;
  let calls = 0;
  proto.writeUVarInt = function (this: unknown, v: number) {
    calls++;
    return shim.call(this, v);
  };
  try {
    const record = (encodeRecord as unknown as (r: Record<string, unknown>) => { buffer: Uint8Array })({
      offsetDelta: 0,
      timestampDelta: 0,
      key: null,
      value: new TextEncoder().encode("hello"),
      headers: { "eb-node": "n1" },
    });
    assert.ok(calls > 0, "kafkajs encoded the record through the shim");
    assert.ok(record.buffer.byteLength > 5);
  } finally {
    proto.writeUVarInt = shim;
  }
});
