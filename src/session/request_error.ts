/** How a failed request is answered: Kafka-layer failures mapped onto protocol codes. */
import { HubRefusal } from "../hub/hub.ts";
import { KafkaFailure } from "../kafka/types.ts";
import { ErrorCode } from "../protocol/mod.ts";

const FAILURE_CODES: Record<KafkaFailure["kind"], ErrorCode> = {
  unavailable: ErrorCode.KAFKA_UNAVAILABLE,
  timeout: ErrorCode.KAFKA_TIMEOUT,
  rejected: ErrorCode.KAFKA_REJECTED,
  too_large: ErrorCode.RECORD_TOO_LARGE,
  invalid_record: ErrorCode.KAFKA_REJECTED,
  unknown_topic: ErrorCode.UNKNOWN_TOPIC,
  bad_partition: ErrorCode.BAD_PARTITION,
  fenced: ErrorCode.NOT_LIVE,
};

export class RequestError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

export function asRequestError(e: unknown): RequestError {
  if (e instanceof RequestError) return e;
  if (e instanceof KafkaFailure) return new RequestError(FAILURE_CODES[e.kind], e.message);
  if (e instanceof HubRefusal) return new RequestError(ErrorCode.TOO_MANY_SUBSCRIPTIONS, e.message);
  return new RequestError(ErrorCode.INTERNAL, `internal error: ${(e as Error)?.message ?? String(e)}`);
}
