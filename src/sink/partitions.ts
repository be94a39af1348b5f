/**
 * Where the sink's records wait, and how a lane's next request is cut from them:
 * per topic, per partition, each partition owned by one lane. Only partitions with
 * work are visited (a lane's `ready` set), so the cost of cutting a request does not
 * grow with the number of topics the bridge has ever written.
 */
import type { KafkaFailure, OutgoingRecord, RecordPosition, TopicInfo } from "../kafka/types.ts";
import type { PartitionQueue } from "./partition_queue.ts";
import { BATCH_OVERHEAD_BYTES } from "./record_size.ts";

export interface Pending {
  record: OutgoingRecord;
  /** Upper bound of the record's encoded size. */
  size: number;
  deadline: number;
  settled: boolean;
  /** Exactly-once records: the fate was reported (see BatchingSinkOptions.onSequencedFate). */
  fated: boolean;
  /** Part of a refused request that Kafka may have partly written: only "may be written" is honest now. */
  maybeWritten: boolean;
  resolve(p: RecordPosition): void;
  reject(e: KafkaFailure): void;
}

export interface PartitionState {
  topic: TopicState;
  partition: number;
  lane: LaneState<unknown>;
  queue: PartitionQueue<Pending>;
  /** Parts of a refused request: each goes alone, before anything newer of this partition. */
  retries: Pending[][];
}

export interface TopicState {
  info: TopicInfo;
  partitions: PartitionState[];
  /** Keyless records fill one partition's batch, then move on (Kafka's sticky partitioner). */
  sticky: number;
}

/** One partition's share of a request. */
export interface Outgoing {
  state: PartitionState;
  items: Pending[];
}

export interface LaneState<L> {
  lane: L;
  inFlight?: Outgoing[];
  /** Partitions of this lane with queued records or retries, oldest first. */
  ready: Set<PartitionState>;
  /** Retries and new batches take turns, so one client's refused records cannot stall the lane. */
  retryTurn: boolean;
  lingerTimer?: ReturnType<typeof setTimeout>;
  scheduled: boolean;
}

export interface CutLimits {
  maxBatchMessages: number;
  maxBatchBytes: number;
  maxRequestBytes: number;
}

export function hasWork(s: PartitionState): boolean {
  return s.queue.length > 0 || s.retries.length > 0;
}

export function batchCap(s: PartitionState, limits: CutLimits): number {
  return Math.min(limits.maxBatchBytes, s.topic.info.maxMessageBytes);
}

/** A full batch is worth sending without waiting for the linger time. */
export function batchFull(s: PartitionState, limits: CutLimits): boolean {
  return s.queue.length >= limits.maxBatchMessages ||
    BATCH_OVERHEAD_BYTES + s.queue.bytes >= batchCap(s, limits);
}

export function moveSticky(t: TopicState): void {
  t.sticky = (t.sticky + 1) % t.info.partitions;
}

/**
 * The lane's next request: a part of a refused request alone (so that a refusal names
 * its batch), or one batch from each partition with records, up to the request's size.
 */
export function cutRequest(lane: LaneState<unknown>, limits: CutLimits): Outgoing[] {
  const ready = [...lane.ready];
  const retrying = ready.find((s) => s.retries.length > 0);
  const fresh = ready.filter((s) => s.retries.length === 0 && s.queue.length > 0);
  if (retrying && (lane.retryTurn || fresh.length === 0)) {
    lane.retryTurn = false;
    while (retrying.retries.length > 0) {
      const items = retrying.retries.shift()!.filter((p) => !p.settled);
      if (items.length > 0) {
        if (!hasWork(retrying)) lane.ready.delete(retrying);
        return [{ state: retrying, items }];
      }
    }
    if (!hasWork(retrying)) lane.ready.delete(retrying);
    return cutRequest(lane, limits);
  }
  lane.retryTurn = true;
  const request: Outgoing[] = [];
  let room = limits.maxRequestBytes;
  for (const state of fresh) {
    if (room <= BATCH_OVERHEAD_BYTES) break;
    const items = cutBatch(state, room, request.length === 0, limits);
    // Visited partitions go to the back, so that none is always last in a full request.
    lane.ready.delete(state);
    if (hasWork(state)) lane.ready.add(state);
    if (items.length === 0) continue;
    request.push({ state, items });
    room -= BATCH_OVERHEAD_BYTES;
    for (const p of items) room -= p.size;
    if (state.topic.sticky === state.partition) moveSticky(state.topic);
  }
  return request;
}

function cutBatch(
  state: PartitionState,
  room: number,
  firstInRequest: boolean,
  limits: CutLimits,
): Pending[] {
  const items: Pending[] = [];
  const cap = Math.min(batchCap(state, limits), room);
  let bytes = BATCH_OVERHEAD_BYTES;
  const q = state.queue;
  for (let p = q.peek(); p !== undefined; p = q.peek()) {
    if (p.settled) { // timed out while queued: already answered, never sent
      q.shift();
      continue;
    }
    if (items.length >= limits.maxBatchMessages) break;
    // The first record of a request always goes: it passed admission, so it fits the topic's limit.
    if (bytes + p.size > cap && (items.length > 0 || !firstInRequest)) break;
    items.push(q.shift()!);
    bytes += p.size;
  }
  return items;
}
