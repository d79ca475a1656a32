// Typed EduPulse payloads: packing them into the `proto_data` Any of an Event and
// unpacking them from a Record.
import type { LessonPublished, LessonPublished__Output } from "./generated/edupulse/events/v1/LessonPublished.js";
import type { QuizSubmitted, QuizSubmitted__Output } from "./generated/edupulse/events/v1/QuizSubmitted.js";
import type { PeerFeedbackGiven, PeerFeedbackGiven__Output } from "./generated/edupulse/events/v1/PeerFeedbackGiven.js";
import type { BadgeAwarded, BadgeAwarded__Output } from "./generated/edupulse/events/v1/BadgeAwarded.js";
import type { LearningPulseSubmitted, LearningPulseSubmitted__Output } from "./generated/edupulse/events/v1/LearningPulseSubmitted.js";
import type { PaymentProcessed, PaymentProcessed__Output } from "./generated/edupulse/events/v1/PaymentProcessed.js";
import type { Timestamp } from "./generated/google/protobuf/Timestamp.js";
import { eventsRoot } from "./proto.js";

/** The protobuf package of the EduPulse events. */
export const EDUPULSE_PACKAGE = "edupulse.events.v1";
/** The prefix of their `Any` type URLs. */
export const TYPE_URL_PREFIX = "type.googleapis.com/";

/** What a producer passes for each EduPulse message (Date allowed for timestamps). */
export interface EduPulseInputs {
  LessonPublished: WithDates<LessonPublished>;
  QuizSubmitted: WithDates<QuizSubmitted>;
  PeerFeedbackGiven: WithDates<PeerFeedbackGiven>;
  BadgeAwarded: WithDates<BadgeAwarded>;
  LearningPulseSubmitted: WithDates<LearningPulseSubmitted>;
  PaymentProcessed: WithDates<PaymentProcessed>;
}

/** What a consumer gets back (int64 as strings, enums as names, defaults filled in). */
export interface EduPulseOutputs {
  LessonPublished: LessonPublished__Output;
  QuizSubmitted: QuizSubmitted__Output;
  PeerFeedbackGiven: PeerFeedbackGiven__Output;
  BadgeAwarded: BadgeAwarded__Output;
  LearningPulseSubmitted: LearningPulseSubmitted__Output;
  PaymentProcessed: PaymentProcessed__Output;
}

export type EduPulseKind = keyof EduPulseInputs;

type WithDates<T> = { [K in keyof T]: NonNullable<T[K]> extends Timestamp ? T[K] | Date : T[K] };

/** The `Any` type URL of an EduPulse message, e.g. `type.googleapis.com/edupulse.events.v1.QuizSubmitted`. */
export function typeUrl(kind: EduPulseKind): string {
  return `${TYPE_URL_PREFIX}${EDUPULSE_PACKAGE}.${kind}`;
}

/** A Date as a protobuf Timestamp. */
export function timestamp(date: Date): Timestamp {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 };
}

/** Encodes an EduPulse message as the `Any` of `Event.protoData`. */
export function pack<K extends EduPulseKind>(kind: K, payload: EduPulseInputs[K]): { type_url: string; value: Buffer } {
  const type = eventsRoot().lookupType(`${EDUPULSE_PACKAGE}.${kind}`);
  const plain: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(payload as Record<string, unknown>)) {
    plain[key] = value instanceof Date ? timestamp(value) : value;
  }
  const problem = type.verify(type.fromObject(plain));
  if (problem) throw new TypeError(`${kind}: ${problem}`);
  return { type_url: typeUrl(kind), value: Buffer.from(type.encode(type.fromObject(plain)).finish()) };
}

/** The EduPulse kind named by a type URL, or undefined for other types. */
export function kindOf(url: string): EduPulseKind | undefined {
  const name = url.slice(url.lastIndexOf("/") + 1);
  if (!name.startsWith(`${EDUPULSE_PACKAGE}.`)) return undefined;
  const kind = name.slice(EDUPULSE_PACKAGE.length + 1);
  return eventsRoot().lookup(name) ? (kind as EduPulseKind) : undefined;
}

/** Decodes the bytes of an EduPulse message. */
export function unpack<K extends EduPulseKind>(kind: K, bytes: Uint8Array): EduPulseOutputs[K] {
  const type = eventsRoot().lookupType(`${EDUPULSE_PACKAGE}.${kind}`);
  return type.toObject(type.decode(bytes), {
    longs: String,
    enums: String,
    defaults: true,
  }) as EduPulseOutputs[K];
}
