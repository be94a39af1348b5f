import assert from "node:assert/strict";
import { partitionForKey } from "./partitioner.ts";

Deno.test("partitionForKey: the Java client's murmur2 placement", () => {
  const enc = new TextEncoder();
  // Kafka's own murmur2 test vectors (UtilsTest); the Java client places at toPositive(hash) % partitions.
  const vectors: [string, number][] = [["21", -973932308], ["foobar", -790332482], ["abc", 479470107], [
    "a-little-bit-long-string",
    -985981536,
  ]];
  for (const [key, hash] of vectors) {
    assert.equal(partitionForKey("t", 1000, enc.encode(key)), (hash & 0x7fffffff) % 1000, key);
  }
  assert.equal(partitionForKey("t", 3, enc.encode("k0")), partitionForKey("other", 3, enc.encode("k0")));
  const seen = new Set<number>();
  for (let i = 0; i < 100; i++) {
    const p = partitionForKey("t", 6, enc.encode(`key-${i}`));
    assert.ok(p >= 0 && p < 6);
    seen.add(p);
  }
  assert.equal(seen.size, 6, "keys spread over every partition");
  // A key given as a view into a larger buffer is read as the view, not the whole buffer.
  const big = enc.encode("xxk0yy");
  assert.equal(partitionForKey("t", 12, big.subarray(2, 4)), partitionForKey("t", 12, enc.encode("k0")));
});
