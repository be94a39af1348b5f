import assert from "node:assert/strict";
import Cluster from "kafkajs/src/cluster/index.js";
import createEosManager from "kafkajs/src/producer/eosManager/index.js";
import { EOS_RETRY, installEosRetryShim } from "./eos_retry_shim.ts";

/** A transaction manager on a cluster whose coordinator answers CONCURRENT_TRANSACTIONS `busy` times. */
function manager(busy: number) {
  const retryTimes: number[] = [];
  let calls = 0;
  const coordinator = {
    initProducerId: () => {
      calls++;
      if (calls <= busy) {
        return Promise.reject(Object.assign(new Error("concurrent"), { type: "CONCURRENT_TRANSACTIONS" }));
      }
      return Promise.resolve({ producerId: 7, producerEpoch: 3 });
    },
  };
  // Inherits Cluster's prototype, where the shim puts `retry`.
  const cluster = Object.setPrototypeOf({
    refreshMetadataIfNecessary: () => Promise.resolve(),
    findGroupCoordinator: () => Promise.resolve(coordinator),
  }, (Cluster as unknown as { prototype: object }).prototype);
  const noop = () => {};
  const logger = {
    debug: (_message: string, extra?: { retryTime?: number }) => {
      if (extra?.retryTime !== undefined) retryTimes.push(extra.retryTime);
    },
    info: noop,
    warn: noop,
    error: noop,
  };
  const eos = (createEosManager as unknown as (o: object) => { initProducerId(): Promise<void> })({
    logger,
    cluster,
    transactional: true,
    transactionalId: "t",
  });
  return { eos, retryTimes, calls: () => calls };
}

Deno.test("eos retry shim: a transaction in the way is retried from 10 ms, not kafkajs' 300 ms", async () => {
  assert.equal(installEosRetryShim(), true, "kafkajs 2.2.4's transaction manager was recognised");
  assert.equal(installEosRetryShim(), true, "installing twice is harmless");
  const { eos, retryTimes, calls } = manager(2);
  await eos.initProducerId();
  assert.equal(calls(), 3);
  // kafkajs randomises each delay by ±20 %: about 10 ms, then about 20 ms.
  assert.equal(retryTimes.length, 2);
  assert.ok(retryTimes[0] >= 8 && retryTimes[0] <= 12, `first retry after ${retryTimes[0]} ms`);
  assert.ok(retryTimes[1] >= 12 && retryTimes[1] <= 30, `second retry after ${retryTimes[1]} ms`);
  assert.equal(EOS_RETRY.retries, 15);
});
