// consumer.run(handler): messages handled with bounded concurrency, settled by what the
// handler does (resolve: ack; throw or Retry: nack with back-off; Fail: dead letter),
// deadlines extended while it runs, and a graceful stop from an AbortSignal.
import type { Consumer } from "./consumer.js";
import type { Message } from "./message.js";

/** Returned (or thrown) by a handler: redeliver, after `delayMs` or the consumer's back-off. */
export class RetryResult {
  constructor(readonly delayMs?: number) {}
}

/** Returned (or thrown) by a handler: never retry, send to the dead-letter topic. */
export class FailResult {
  constructor(readonly reason: string) {}
}

/** `return Retry(5000)`: nack with a delay (or the consumer's back-off without one). */
export function Retry(delayMs?: number): RetryResult {
  return new RetryResult(delayMs);
}

/** `return Fail("bad payload")`: dead-letter the record with this reason. */
export function Fail(reason: string): FailResult {
  return new FailResult(reason);
}

export type Handler = (message: Message) => unknown | Promise<unknown>;

export interface RunOptions {
  /** Handlers running at once (default 1). Above 1, records of one subject are still handled one after another, in order. */
  concurrency?: number;
  /** Aborting stops receiving, lets running handlers finish, settles them, and closes. */
  signal?: AbortSignal;
  /** On abort, `drain` (default) waits for running handlers; `nack` gives their messages back at once. */
  onAbort?: "drain" | "nack";
  /** Stop extending a message's deadline after this long, ms (default 10 min). */
  maxExtensionMs?: number;
  /** Called with errors the handler threw (they nack the message). */
  onError?: (error: unknown, message: Message) => void;
}

export async function run(consumer: Consumer, handler: Handler, options: RunOptions = {}): Promise<void> {
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const maxExtensionMs = options.maxExtensionMs ?? 600_000;
  const signal = options.signal;
  const running = new Map<Message, number>(); // message -> when its handler started
  const lanes = new Map<string, Promise<void>>();
  let slotFreed: (() => void) | undefined;
  const handling = new Set<Promise<void>>();

  const onAbort = () => {
    consumer.stopReceiving();
    if (options.onAbort === "nack") for (const m of running.keys()) void m.nack(0).catch(() => undefined);
    slotFreed?.();
  };
  if (signal?.aborted) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });

  // Deadlines: one ExtendAckDeadline for every running handler whose record was last
  // extended (or delivered) a third of the consumer's ack deadline ago. The deadline
  // is learned after attaching, so the check runs often and reads it each time.
  const extended = new Map<Message, number>();
  const extender = setInterval(() => {
    if (consumer.mode === "exclusive" || running.size === 0) return;
    const every = (consumer.ackDeadlineMs ?? 30_000) / 3;
    const now = Date.now();
    const due = [...running]
      .filter(([m, started]) => !m.settlement && now - started < maxExtensionMs && now - (extended.get(m) ?? started) >= every)
      .map(([m]) => m);
    if (due.length === 0) return;
    due.forEach((m) => extended.set(m, now));
    void consumer.extend(due).catch(() => undefined);
  }, 250);
  extender.unref();

  const handleOne = async (message: Message) => {
    running.set(message, Date.now());
    try {
      let outcome: unknown;
      try {
        outcome = await handler(message);
      } catch (error) {
        outcome = error;
        if (!(error instanceof RetryResult) && !(error instanceof FailResult)) {
          options.onError?.(error, message);
          outcome = new RetryResult();
        }
      }
      // Settling is not awaited here: acks are coalesced and the slot is free at once.
      let settled: Promise<void>;
      if (outcome instanceof FailResult) settled = message.deadLetter(outcome.reason);
      else if (outcome instanceof RetryResult) settled = message.nack(outcome.delayMs);
      else settled = message.ack();
      settled.catch(() => undefined);
    } finally {
      running.delete(message);
      extended.delete(message);
    }
  };

  let failure: unknown;
  try {
    for (;;) {
      while (handling.size >= concurrency && !signal?.aborted) {
        await new Promise<void>((resolve) => (slotFreed = resolve));
      }
      if (signal?.aborted) break;
      const message = await consumer.next();
      if (!message) break;
      const key = concurrency > 1 ? message.subject : "";
      const previous = key ? lanes.get(key) : undefined;
      const task: Promise<void> = (previous ? previous.then(() => handleOne(message)) : handleOne(message)).finally(() => {
        handling.delete(task);
        if (key && lanes.get(key) === task) lanes.delete(key);
        slotFreed?.();
      });
      handling.add(task);
      if (key) lanes.set(key, task);
    }
  } catch (error) {
    failure = error;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    consumer.stopReceiving();
    await Promise.allSettled([...handling]);
    clearInterval(extender);
    await consumer.close();
  }
  if (failure) throw failure;
}
