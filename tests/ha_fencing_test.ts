/**
 * The pair's transactional lane against the real broker: each activation's epoch comes from
 * Kafka and is greater than the last, and once a newer activation took the id, the older
 * lane's writes and group commits are both refused as fenced; kcat and the group's committed
 * offsets show nothing of the zombie's.
 */
import assert from "node:assert/strict";
import { Kafka, logLevel } from "kafkajs";
import { configSchema } from "../src/config/schema.ts";
import { createKafka, ProducerIdWatch } from "../src/kafka/kafkajs/client.ts";
import { KafkajsProducerLane } from "../src/kafka/kafkajs/producer_lane.ts";
import type { KafkaFailure } from "../src/kafka/types.ts";
import { createLogger } from "../src/observability/logger.ts";
import { brokers, createTopics, uniqueTopic } from "./helpers/kafka.ts";
import { kcatRead } from "./helpers/kcat.ts";

function lane(transactionalId: string): { lane: KafkajsProducerLane; kafka: Kafka } {
  const config = configSchema.parse({ kafka: { brokers: brokers().split(",") } });
  const producerIds = new ProducerIdWatch();
  const kafka = createKafka(config.kafka, createLogger("silent", "t"), {}, producerIds);
  return {
    kafka,
    lane: new KafkajsProducerLane(kafka, { transactionalId, producerIds, requestTimeoutMs: 10_000 }),
  };
}

Deno.test("ha fencing: Kafka orders the epochs; a fenced lane can neither write nor commit a group offset", async () => {
  const topic = uniqueTopic("fencing");
  await createTopics([{ name: topic, partitions: 1 }]);
  const transactionalId = `edge-bridge-ha.${uniqueTopic("pair")}`;
  const groupId = uniqueTopic("fenced-group");
  const old = lane(transactionalId), next = lane(transactionalId);
  const admin = new Kafka({ brokers: brokers().split(","), logLevel: logLevel.NOTHING }).admin();
  try {
    const record = (value: string) => ({ topic, value: new TextEncoder().encode(value), headers: {} });
    const first = await old.lane.activate();
    await old.lane.produce([{ topic, partition: 0, records: [record("from the first live")] }]);
    const second = await next.lane.activate();
    assert.ok(second > first, `each activation's epoch is greater: ${first} then ${second}`);
    const third = await next.lane.activate();
    assert.ok(third > second, `also on the same node: ${second} then ${third}`);

    const write = await old.lane.produce([{ topic, partition: 0, records: [record("zombie write")] }])
      .then(() => "written", (e: KafkaFailure) => e.kind);
    assert.equal(write, "fenced");
    const commit = await old.lane.produce([], undefined, [{ groupId, topic, partition: 0, next: "1" }])
      .then(() => "committed", (e: KafkaFailure) => e.kind);
    assert.equal(commit, "fenced", "a zombie's group commit fails like its writes");

    await next.lane.produce([], undefined, [{ groupId, topic, partition: 0, next: "1" }]);
    await admin.connect();
    const [offsets] = (await admin.fetchOffsets({ groupId, topics: [topic] })).map((t) => t.partitions);
    assert.deepEqual(
      offsets.map((p) => [p.partition, p.offset]),
      [[0, "1"]],
      "the live's commit, in its transaction",
    );
    const inKafka = await kcatRead(topic);
    assert.deepEqual(
      inKafka.map((r) => r.payload),
      ["from the first live"],
      "nothing of the zombie's is visible",
    );
  } finally {
    await admin.disconnect();
    await old.lane.reset();
    await next.lane.reset();
  }
});
