/**
 * kafkajs 2.2.4 encodes every varint by building a JS array and copying it through
 * `Buffer.from(array)`: a new Buffer per varint, about 14 per record once the bridge's
 * four headers are counted. Under Deno's node compatibility each Buffer costs a
 * FastBuffer construction, and the V8 profile of the publish path put that at a fifth
 * of the bridge's CPU (docs/benchmarks.md). kafkajs is no longer released, so the fix
 * cannot come from upstream.
 *
 * This writes the same bytes straight into the encoder's buffer. It applies only to the
 * exact implementation it replaces (checked by its source), and varint_shim_test.ts
 * compares its output with the original's byte for byte.
 */
import Encoder from "kafkajs/src/protocol/encoder.js";

interface EncoderLike {
  buf: Uint8Array;
  offset: number;
  ensureAvailable(length: number): void;
  writeUVarInt(value: number): EncoderLike;
}

const proto = (Encoder as unknown as { prototype: EncoderLike }).prototype;

/** kafkajs' own writeUVarInt, kept for the test that compares outputs. */
export const originalWriteUVarInt = proto.writeUVarInt;

/** Unsigned LEB128, as kafkajs writes it: 7 bits a byte, low bits first, high bit set on all but the last. */
function writeUVarInt(this: EncoderLike, value: number): EncoderLike {
  this.ensureAvailable(5);
  const buf = this.buf;
  let offset = this.offset;
  while ((value & 0xffffff80) !== 0) {
    buf[offset++] = (value & 0x7f) | 0x80;
    value >>>= 7;
  }
  buf[offset++] = value & 0x7f;
  this.offset = offset;
  return this;
}

/** True when installed; false when kafkajs is not the version this was written for (then nothing changes). */
export function installVarintShim(): boolean {
  if (proto.writeUVarInt === writeUVarInt) return true;
  const source = String(originalWriteUVarInt);
  if (!source.includes("Buffer.from(byteArray)") || !source.includes("UNSIGNED_INT32_MAX_NUMBER")) {
    return false;
  }
  proto.writeUVarInt = writeUVarInt;
  return true;
}
