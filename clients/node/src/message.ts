// One delivered record, with the ways to settle it.
import type { Record__Output } from "./generated/pulsebus/v1/Record.js";
import { kindOf, unpack, type EduPulseKind, type EduPulseOutputs } from "./edupulse.js";
import { toDate } from "./client.js";

/** How a message was settled. */
export type Settlement = "acked" | "nacked" | "dead-lettered";

/** What a Message asks its consumer to do (the consumer batches and sends it). */
export interface SettleTarget {
  settle(message: Message, how: Settlement, options: { delayMs?: number; reason?: string }): Promise<void>;
  extend(messages: Message[], deadlineMs?: number): Promise<void>;
}

export class Message {
  readonly topic: string;
  /** Offset in the topic (int64 as a decimal string). */
  readonly offset: string;
  readonly id: string;
  readonly type: string;
  readonly source: string;
  readonly subject: string;
  readonly time?: Date;
  readonly appendedAt?: Date;
  readonly correlationId: string;
  readonly causationId: string;
  readonly schemaVersion: number;
  readonly attributes: { [key: string]: string };
  readonly contentType: string;
  /** 1 on the first delivery, 2, 3... on redeliveries (shared modes). */
  readonly deliveryAttempt: number;
  /** The seek epoch the record was delivered under (sent with its ack). */
  readonly seekEpoch?: string;
  /** The raw record as @grpc/proto-loader decoded it. */
  readonly record: Record__Output;
  /** Set once the message is settled. */
  settlement?: Settlement;
  private settling?: Promise<void>;

  constructor(
    record: Record__Output,
    seekEpoch: string | undefined,
    private readonly target: SettleTarget,
  ) {
    const event = record.event!;
    this.record = record;
    this.topic = record.topic;
    this.offset = record.offset;
    this.id = event.id;
    this.type = event.type;
    this.source = event.source;
    this.subject = event.subject;
    this.time = toDate(event.time);
    this.appendedAt = toDate(record.appendedAt);
    this.correlationId = event.correlationId;
    this.causationId = event.causationId;
    this.schemaVersion = event.schemaVersion;
    this.attributes = event.attributes;
    this.contentType = event.contentType;
    this.deliveryAttempt = record.deliveryAttempt;
    this.seekEpoch = seekEpoch;
  }

  /** The payload as text (`text_data`), or undefined. */
  text(): string | undefined {
    return this.record.event?.textData;
  }

  /** The payload parsed as JSON (from `text_data`). */
  json<T = unknown>(): T {
    const text = this.text();
    if (text === undefined) throw new TypeError(`record ${this.offset} of ${this.topic} has no text payload`);
    return JSON.parse(text) as T;
  }

  /** The payload bytes: `binary_data`, or the value of `proto_data`. */
  bytes(): Buffer | undefined {
    const event = this.record.event;
    return event?.binaryData ?? event?.protoData?.value;
  }

  /** The EduPulse kind of a `proto_data` payload (e.g. `QuizSubmitted`), or undefined. */
  get kind(): EduPulseKind | undefined {
    const url = this.record.event?.protoData?.type_url;
    return url ? kindOf(url) : undefined;
  }

  /** Decodes an EduPulse payload; throws when the payload is not that kind. */
  decode<K extends EduPulseKind>(kind: K): EduPulseOutputs[K] {
    const any = this.record.event?.protoData;
    if (!any || this.kind !== kind) {
      throw new TypeError(`record ${this.offset} of ${this.topic} is not a ${kind} (type_url ${any?.type_url ?? "none"})`);
    }
    return unpack(kind, any.value);
  }

  /** Done: acknowledges the record (batched with others; resolves once committed). */
  ack(): Promise<void> {
    return this.settle("acked", {});
  }

  /** Give it back for redelivery after `delayMs` (default: the consumer's back-off). */
  nack(delayMs?: number): Promise<void> {
    return this.settle("nacked", { delayMs });
  }

  /** Never retry: sends the record to the dead-letter topic with this reason. */
  deadLetter(reason: string): Promise<void> {
    return this.settle("dead-lettered", { reason });
  }

  /** Still working on it: restarts the ack deadline (shared modes; a no-op on exclusive consumers). */
  inProgress(deadlineMs?: number): Promise<void> {
    if (this.settlement) return Promise.resolve();
    return this.target.extend([this], deadlineMs);
  }

  /**
   * @internal The consumer gives the message back without a Nack call of its own
   * (on close): it counts as nacked. True when it was still unsettled.
   */
  release(): boolean {
    if (this.settling) return false;
    this.settlement = "nacked";
    this.settling = Promise.resolve();
    return true;
  }

  private settle(how: Settlement, options: { delayMs?: number; reason?: string }): Promise<void> {
    if (this.settling) return this.settling;
    this.settlement = how;
    this.settling = this.target.settle(this, how, options);
    return this.settling;
  }
}
