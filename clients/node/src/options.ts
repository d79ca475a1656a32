// What a consumer is asked to be, and the SubscribeRequest that says so.
import type { Duration } from "./generated/google/protobuf/Duration.js";
import type { BackoffOptions } from "./backoff.js";
import { timestamp } from "./edupulse.js";

export type DeliveryModeName = "exclusive" | "shared" | "key_shared";

export interface ConsumerConfigOptions {
  /** Shared modes: how long a record may be held before it is redelivered, ms. */
  ackDeadlineMs?: number;
  /** Dead-letter after this many attempts (0: unlimited). */
  maxDeliveries?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Default `<topic>.dlq`. */
  deadLetterTopic?: string;
}

export type Start = "earliest" | "latest" | { offset: string | number } | { time: Date };

export interface ConsumerOptions {
  /** The delivery mode, set when the consumer is created. Unset: join the consumer in whatever mode it has (learned from ListConsumers). */
  mode?: DeliveryModeName;
  /** Settings applied when the consumer is created (sent together with `mode`). */
  config?: ConsumerConfigOptions;
  /** Where a new consumer starts (default earliest). */
  start?: Start;
  /** Only these event types (exclusive and ephemeral only). */
  types?: string[];
  /** Most unacked records the server sends this stream (default 1000). */
  maxInFlight?: number;
  /**
   * Most records the server may put in one message (default {@link DEFAULT_BATCH_RECORDS}; 0: one record per
   * message). Records are still handed out one at a time, in order; batches only save per-message costs while
   * the consumer is behind, since the server never waits to fill one.
   */
  batchRecords?: number;
  /** No message at all (records or heartbeats) for this long means a dead stream: reconnect. Default 15 000 ms (3 heartbeat intervals of the server's default 5 s). */
  heartbeatTimeoutMs?: number;
  /** How long acks wait to be sent together, ms (default 5). */
  ackLingerMs?: number;
  /** Back-off between reconnects (default: the client's). */
  backoff?: BackoffOptions;
}

/** Records per message a consumer asks for unless `batchRecords` says otherwise. */
export const DEFAULT_BATCH_RECORDS = 256;

const MODES: Record<DeliveryModeName, string> = {
  exclusive: "DELIVERY_MODE_EXCLUSIVE",
  shared: "DELIVERY_MODE_SHARED",
  key_shared: "DELIVERY_MODE_KEY_SHARED",
};

export function duration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: Math.round((ms - seconds * 1000) * 1_000_000) };
}

export function durationMs(d: { seconds: string | number; nanos: number } | null | undefined): number | undefined {
  return d ? Number(d.seconds) * 1000 + d.nanos / 1_000_000 : undefined;
}

/**
 * The SubscribeRequest for a consumer. An ephemeral subscription keeps no position on
 * the server: after a reconnect it asks for the records after `resumeAfter`.
 */
export function subscribeRequest(
  topic: string,
  name: string,
  o: ConsumerOptions,
  resumeAfter?: bigint,
  lastSeen?: { offset: bigint; eventId: string },
): Record<string, unknown> {
  const request: Record<string, unknown> = {
    topic,
    consumer: name,
    types: o.types ?? [],
    maxInFlight: o.maxInFlight ?? 0,
    batchRecords: o.batchRecords ?? DEFAULT_BATCH_RECORDS,
  };
  if (lastSeen) request.lastSeen = { offset: String(lastSeen.offset), eventId: lastSeen.eventId };
  let start: Start | undefined = o.start;
  if (resumeAfter !== undefined) start = { offset: String(resumeAfter + 1n) };
  if (start === "earliest") request.start = { earliest: {} };
  else if (start === "latest") request.start = { latest: {} };
  else if (start && "offset" in start) request.start = { offset: String(start.offset) };
  else if (start && "time" in start) request.start = { time: timestamp(start.time) };
  if (name !== "" && o.mode) {
    const c = o.config ?? {};
    const config: Record<string, unknown> = { mode: MODES[o.mode] };
    if (c.ackDeadlineMs !== undefined) config.ackDeadline = duration(c.ackDeadlineMs);
    if (c.maxDeliveries !== undefined) config.maxDeliveries = c.maxDeliveries;
    if (c.minBackoffMs !== undefined) config.minBackoff = duration(c.minBackoffMs);
    if (c.maxBackoffMs !== undefined) config.maxBackoff = duration(c.maxBackoffMs);
    if (c.deadLetterTopic !== undefined) config.deadLetterTopic = c.deadLetterTopic;
    request.config = config;
  }
  return request;
}
