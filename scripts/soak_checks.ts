/**
 * The soak's verdicts (scripts/soak_failover.ts): what Kafka holds and what a group consumer got,
 * checked against the producer's acks. Pure functions of the records read back, so that what counts
 * as lost, duplicated or stale is tested on its own (soak_checks_test.ts).
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
