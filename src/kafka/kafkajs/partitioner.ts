/** Java-compatible murmur2 placement for keyed records, through kafkajs' default partitioner. */
import { Buffer } from "node:buffer";
import { Partitioners, type PartitionMetadata } from "kafkajs";

const keyPartitioner = Partitioners.DefaultPartitioner();

/** The partitioner only reads the partition ids; built once per partition count, not per record. */
const metadataByCount = new Map<number, PartitionMetadata[]>();
function partitionMetadataFor(partitions: number): PartitionMetadata[] {
  let m = metadataByCount.get(partitions);
  if (!m) {
    m = Array.from(
      { length: partitions },
      (_, i) => ({ partitionId: i, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }),
    );
    metadataByCount.set(partitions, m);
  }
  return m;
}

export function partitionForKey(topic: string, partitions: number, key: Uint8Array): number {
  const partitionMetadata = partitionMetadataFor(partitions);
  const message = { key: Buffer.from(key.buffer, key.byteOffset, key.byteLength), value: null };
  return keyPartitioner({ topic, partitionMetadata, message });
}
