/**
 * The soak's verdicts (scripts/soak_failover.ts): what Kafka holds and what a group consumer got,
 * checked against the producer's acks, and whether a mode's run passed (its exit code). Pure
 * functions, so that what counts as lost, duplicated or stale is tested on its own
 * (soak_checks_test.ts).
 */
import type { KcatRecord } from "../tests/helpers/kcat.ts";
import type { Sent } from "../tests/helpers/steady_producer.ts";

/** The seq of a record published with one: the last part of its eb-message-id (clientId:instance:seq). */
export function seqOf(r: KcatRecord): string | undefined {
  return r.headers["eb-message-id"]?.split(":").at(-1);
}

export const positionOf = (p: { partition: number; offset: string | number }) => `${p.partition}/${p.offset}`;

/** What Kafka holds, checked against the acks: lost, duplicated, and stale-epoch records. */
export function checkKafka(records: KcatRecord[], sent: Sent[], clientId: string) {
  const byPosition = new Map(records.map((r) => [positionOf(r), r]));
  const lost: string[] = [];
  const named = new Set<string>();
  for (const s of sent) {
    if (!s.ack) continue;
    const at = positionOf(s.ack);
    named.add(at);
    const r = byPosition.get(at);
    const why = !r
      ? "no record there"
      : r.payload !== s.value
      ? `another record there (${(r.payload ?? "").split(":")[0]})`
      : r.headers["eb-client-id"] !== clientId || seqOf(r) !== String(s.ack.seq)
      ? `its headers name ${r.headers["eb-message-id"]}`
      : undefined;
    if (why) {
      lost.push(
        `soak${s.n} (seq ${s.ack.seq}) acked at ${at}${s.ack.duplicate ? " (duplicate)" : ""}: ${why}`,
      );
    }
  }
  const copies = new Map<string, KcatRecord[]>();
  for (const r of records) {
    const key = `${r.headers["eb-client-id"]} seq ${seqOf(r)}`;
    copies.set(key, [...(copies.get(key) ?? []), r]);
  }
  const duplicates = [...copies].flatMap(([key, rs]) =>
    rs.slice(1).map((r) => `${key} at ${positionOf(r)}, first at ${positionOf(rs[0])}`)
  );
  // A write at an epoch lower than one already in the partition (offset order) came from a live
  // that a newer one had replaced: a zombie's write that fencing should have stopped.
  const stale: string[] = [];
  const highest = new Map<number, { epoch: number; at: string; node?: string }>();
  for (const r of [...records].sort((x, y) => x.partition - y.partition || x.offset - y.offset)) {
    const epoch = Number(r.headers["eb-epoch"]);
    if (!Number.isFinite(epoch)) {
      stale.push(`${positionOf(r)} has no eb-epoch header`);
      continue;
    }
    const top = highest.get(r.partition);
    if (top && epoch < top.epoch) {
      stale.push(
        `${positionOf(r)} epoch ${epoch} (node ${
          r.headers["eb-node"]
        }) after epoch ${top.epoch} at ${top.at} (node ${top.node})`,
      );
    } else if (!top || epoch > top.epoch) {
      highest.set(r.partition, { epoch, at: positionOf(r), node: r.headers["eb-node"] });
    }
  }
  const unacked = records.filter((r) => !named.has(positionOf(r))).length;
  return { lost, duplicates, stale, unacked };
}

/** What a group consumer got (how often it was handed each position), checked against the acks. */
export function checkConsumer(positions: ReadonlyMap<string, number>, sent: Sent[]) {
  const acked = new Set(sent.filter((s) => s.ack).map((s) => positionOf(s.ack!)));
  const missed = [...acked].filter((at) => !positions.has(at));
  const twice = [...positions].filter(([, n]) => n > 1).map(([at, n]) => `${at} x${n}`);
  const unknown = [...positions.keys()].filter((at) => !acked.has(at)).length;
  return { missed, twice, unknown };
}

export interface CycleTimes {
  /** kill -9 of a -> the producer's first ack at b's epoch. */
  failoverMs: number;
  /** b logs "stepping down" -> the producer's first ack at a's new epoch. */
  failbackMs: number;
  /** a's process spawned -> /readyz says a is live. */
  restartToLiveMs: number;
}

/** One mode's run, as the soak reports it. */
export interface ModeResult {
  mode: "heartbeat" | "file-lock";
  cyclesDone: number;
  /** Why the run stopped early, or a final step that failed. */
  errors: string[];
  times: CycleTimes[];
  published: number;
  acked: number;
  duplicateAcks: number;
  failedPublishes: string[];
  unanswered: number;
  pauses: number;
  epochs: number;
  kafkaRecords: number;
  perPartition: number[];
  lost: string[];
  /** Extra copies in Kafka (a record there n times counts n - 1). */
  duplicatesInKafka: string[];
  staleEpoch: string[];
  /** Records in Kafka that no ack named (a publish refused or unanswered may have been written). */
  unacked: number;
  consumed: number;
  consumerMissed: string[];
  consumerTwice: string[];
  consumerUnknown: number;
  consumerError?: string;
  commits: number;
  commitsConfirmed: number;
  commitErrors: string[];
  commitsUnanswered: number;
  heldBack: number;
  logFile?: string;
}

/** Why a mode's run fails (exit code 1); empty when it passed. */
export function failures(r: ModeResult): string[] {
  const out = r.errors.map((e) => `the run did not complete: ${e}`);
  const some = (xs: string[], what: string) => {
    if (xs.length > 0) out.push(`${xs.length} ${what}, e.g.\n  ${xs.slice(0, 5).join("\n  ")}`);
  };
  some(r.lost, "acked records lost");
  some(r.duplicatesInKafka, "extra copies in Kafka");
  some(r.staleEpoch, "stale-epoch records");
  some(r.consumerMissed, "acked records the consumer missed");
  some(r.failedPublishes, "publishes refused");
  if (r.unanswered > 0) out.push(`${r.unanswered} publishes never answered`);
  return out;
}
