import assert from "node:assert/strict";
import kafkajs from "kafkajs";
import type * as KafkaJS from "kafkajs";
import { whileCoordinatorBusy } from "./busy_retry.ts";

const { KafkaJSProtocolError } = kafkajs as unknown as typeof KafkaJS;
const refusal = (type: string) =>
  new KafkaJSProtocolError({ type, code: 51, retriable: true, message: `broker said ${type}` } as never);

/** An operation that fails with `errors` in turn, then succeeds; and the waits between attempts. */
function scripted(errors: Error[]) {
  const waits: number[] = [];
  let calls = 0;
  const op = () => (calls++ < errors.length ? Promise.reject(errors[calls - 1]) : Promise.resolve("done"));
  return { op, waits, wait: (ms: number) => (waits.push(ms), Promise.resolve()), calls: () => calls };
}

Deno.test("busy retry: CONCURRENT_TRANSACTIONS is asked again, from 2 ms, doubling", async () => {
  const s = scripted([refusal("CONCURRENT_TRANSACTIONS"), refusal("CONCURRENT_TRANSACTIONS")]);
  assert.equal(await whileCoordinatorBusy(s.op, { wait: s.wait }), "done");
  assert.equal(s.calls(), 3);
  assert.deepEqual(s.waits, [2, 4]);
});

Deno.test("busy retry: any other error goes out at once", async () => {
  for (
    const e of [
      refusal("INVALID_PRODUCER_EPOCH"),
      refusal("GROUP_AUTHORIZATION_FAILED"),
      new Error("ECONNRESET"),
    ]
  ) {
    const s = scripted([e]);
    await assert.rejects(whileCoordinatorBusy(s.op, { wait: s.wait }), (got) => got === e);
    assert.equal(s.calls(), 1);
  }
});

Deno.test("busy retry: a coordinator busy for longer than the retries gives its refusal back", async () => {
  const busy = Array.from({ length: 20 }, () => refusal("CONCURRENT_TRANSACTIONS"));
  const s = scripted(busy);
  await assert.rejects(whileCoordinatorBusy(s.op, { wait: s.wait }), /CONCURRENT_TRANSACTIONS/);
  assert.equal(s.calls(), 10);
  assert.deepEqual(s.waits, [2, 4, 8, 16, 32, 64, 128, 250, 250]);
});
