/**
 * Asks the transaction coordinator again while it answers CONCURRENT_TRANSACTIONS.
 *
 * The coordinator gives that answer while it writes the markers of the pair's last transaction, a
 * few ms after each commit. kafkajs retries it for records (its producer retries the whole send)
 * but not for AddOffsetsToTxn, so an offsets-only transaction right after a records one failed at
 * once: 22k of ~150k group commits in a 100-cycle soak, each answered "not confirmed" and sent
 * again by the SDK. The refusal added nothing to the transaction, so asking again is safe.
 */
import { sleep } from "../../util/sleep.ts";
import { errorType } from "./errors.ts";

export interface BusyRetryOptions {
  /** Attempts after the first (default 9: waits of 2, 4, ... ms, capped at 250: 754 ms in all). */
  retries?: number;
  wait?: (ms: number) => Promise<void>;
}

export async function whileCoordinatorBusy<T>(op: () => Promise<T>, opts: BusyRetryOptions = {}): Promise<T> {
  const retries = opts.retries ?? 9, wait = opts.wait ?? sleep;
  for (let attempt = 0;; attempt++) {
    try {
      return await op();
    } catch (e) {
      if (attempt >= retries || errorType(e) !== "CONCURRENT_TRANSACTIONS") throw e;
      await wait(Math.min(2 ** (attempt + 1), 250));
    }
  }
}
