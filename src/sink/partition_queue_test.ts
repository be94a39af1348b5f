import assert from "node:assert/strict";
import { PartitionQueue } from "./partition_queue.ts";

Deno.test("partition queue: first in, first out, with the byte total kept", () => {
  const q = new PartitionQueue<{ size: number; n: number }>();
  for (let n = 0; n < 5000; n++) q.push({ size: n % 7, n });
  let expectBytes = q.bytes;
  for (let n = 0; n < 4000; n++) {
    const item = q.shift()!;
    assert.equal(item.n, n);
    expectBytes -= item.size;
    assert.equal(q.bytes, expectBytes);
  }
  assert.equal(q.length, 1000);
  assert.equal(q.peek()!.n, 4000);
  const rest = q.drain();
  assert.deepEqual(rest.map((x) => x.n), Array.from({ length: 1000 }, (_, i) => 4000 + i));
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
  assert.equal(q.shift(), undefined);
});
