/**
 * kafkajs 2.2.4's transaction manager builds its retrier from `cluster.retry`, a property its
 * Cluster never sets, so InitProducerId (and sendOffsets' coordinator lookup) retry on the
 * library's defaults: a first retry after about 300 ms, then doubling. An HA activation that
 * takes over from a live killed mid-transaction meets CONCURRENT_TRANSACTIONS once (the
 * coordinator aborts that transaction in a few ms) and then waited those 300 ms: a third of the
 * failover a client sees. kafkajs is no longer released, so the fix cannot come from upstream.
 *
 * This gives Cluster the `retry` kafkajs reads: from 10 ms, doubling up to 1 s, 15 retries, which
 * span about the 9 s the defaults did (a coordinator that moved still has that long to answer).
 * kafkajs reads `cluster.retry` in two places only: the transaction manager, and the producer,
 * whose own retry options (the lane's, in full) are laid over it.
 */
import Cluster from "kafkajs/src/cluster/index.js";
import createEosManager from "kafkajs/src/producer/eosManager/index.js";

export const EOS_RETRY = Object.freeze({ initialRetryTime: 10, maxRetryTime: 1000, retries: 15 });

const proto = (Cluster as unknown as { prototype: { retry?: unknown } }).prototype;

/** True when installed; false when kafkajs is not the version this was written for (then nothing changes). */
export function installEosRetryShim(): boolean {
  if (proto.retry === EOS_RETRY) return true;
  if (proto.retry !== undefined || !String(createEosManager).includes("createRetry(cluster.retry)")) {
    return false;
  }
  proto.retry = EOS_RETRY;
  return true;
}
