// The consuming engine: one Subscribe stream at a time, reconnected with back-off and
// jitter when it ends or its heartbeats stop; records become Messages in a queue that
// the async iterator and run() take from; settling goes through coalesced acks and
// Nack / ExtendAckDeadline calls.
import { EventEmitter } from "node:events";
import type { ClientReadableStream } from "@grpc/grpc-js";

import type { Client } from "./client.js";
import type { SubscribeResponse__Output } from "./generated/pulsebus/v1/SubscribeResponse.js";
import type { Heartbeat__Output } from "./generated/pulsebus/v1/Heartbeat.js";
import { Backoff, pause } from "./backoff.js";
import { PulsebusError, isTransientForStream } from "./errors.js";
import { duration, durationMs, subscribeRequest, type ConsumerOptions, type DeliveryModeName } from "./options.js";
import { Message, type Settlement, type SettleTarget } from "./message.js";
import { AckBatcher } from "./acks.js";
import { run, type Handler, type RunOptions } from "./run.js";

export { duration, DEFAULT_BATCH_RECORDS, type ConsumerOptions, type ConsumerConfigOptions, type DeliveryModeName, type Start } from "./options.js";

export type ConsumerState = "idle" | "connecting" | "attached" | "standby" | "reconnecting" | "closing" | "closed" | "failed";

/**
 * A consumer of one topic. Iterate it (`for await (const m of consumer)`) or `run(handler)`.
 *
 * Events: `state` (ConsumerState), `attached` ({committedOffset, seekEpoch}), `standby`
 * (another subscriber holds this exclusive consumer; this one waits), `caughtUp`
 * (headOffset), `repositioned`, `heartbeat`, `disconnected` ({error, retryInMs}),
 * `duplicate` (offset dropped), `ackError`, `failed` (error; the consumer stopped).
 */
export class Consumer extends EventEmitter implements SettleTarget {
  /** The delivery mode, once known (from the options or ListConsumers). */
  mode: DeliveryModeName | undefined;
  /** The consumer's ack deadline, ms, once known (shared modes). */
  ackDeadlineMs: number | undefined;
  state: ConsumerState = "idle";
  /** Records dropped as redelivered duplicates (exclusive mode, after a reconnect). */
  duplicatesDropped = 0;
  /** Messages that carried a batch of records (`SubscribeResponse.batch`). */
  batchesReceived = 0;
  /** Streams opened so far (1 + reconnects). */
  streams = 0;

  private readonly acks: AckBatcher;
  private readonly queue: Message[] = [];
  private readonly waiters: { resolve: (m: Message | undefined) => void; reject: (e: unknown) => void }[] = [];
  private readonly unsettled = new Map<string, Message>();
  private readonly settling = new Set<Promise<unknown>>();
  private readonly stop = new AbortController();
  private call: ClientReadableStream<SubscribeResponse__Output> | undefined;
  private loopDone: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private receiving = true;
  private fatal: PulsebusError | undefined;
  private epoch: string | undefined;
  /** Highest offset handed out in the current epoch (exclusive and ephemeral). */
  private delivered: bigint | undefined;
  /**
   * The newest record received, sent as `lastSeen` on every resubscribe: a log that
   * diverged under us (an asynchronous PostgreSQL failover) then fails with
   * LOG_DIVERGED instead of handing out other events at offsets already seen.
   */
  private lastSeen: { offset: bigint; eventId: string } | undefined;
  private learned = false;
  /** close() has given back what it held. */
  private released = false;

  constructor(
    readonly client: Client,
    readonly topic: string,
    readonly name: string,
    readonly options: ConsumerOptions = {},
  ) {
    super();
    this.mode = name === "" ? "exclusive" : options.mode;
    this.ackDeadlineMs = options.config?.ackDeadlineMs;
    const maxInFlight = options.maxInFlight ?? 1000;
    this.acks = new AckBatcher(
      client,
      topic,
      name,
      options.ackLingerMs ?? 5,
      Math.max(1, Math.min(1000, Math.floor(maxInFlight / 2))),
      (error) => this.emit("ackError", error),
    );
    client.closeSignal.addEventListener("abort", () => this.stop.abort(), { once: true });
  }

  /** Opens the stream (iterating or running does this). */
  start(): this {
    if (!this.loopDone) this.loopDone = this.loop();
    return this;
  }

  /** The next message, or undefined once the consumer stopped receiving. Rejects on a permanent error. */
  next(): Promise<Message | undefined> {
    this.start();
    if (this.fatal) return Promise.reject(this.fatal);
    if (!this.receiving) return Promise.resolve(undefined);
    const message = this.queue.shift();
    if (message) return Promise.resolve(message);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<Message> {
    return {
      next: async () => {
        const value = await this.next();
        return value ? { value, done: false } : { value: undefined, done: true };
      },
      // `break` out of a for-await loop: close, nacking what was not settled.
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }

  /** Handles messages with `handler` until `signal` aborts; see run.ts. */
  run(handler: Handler, options: RunOptions = {}): Promise<void> {
    return run(this, handler, options);
  }

  /** Messages delivered and not settled (in the queue or handed out). */
  get unsettledCount(): number {
    return this.unsettled.size;
  }

  /** Stops handing out messages: next() answers undefined from now on; what is queued is given back by close(). */
  stopReceiving(): void {
    this.receiving = false;
    for (const w of this.waiters.splice(0)) w.resolve(undefined);
  }

  /**
   * Stops receiving, sends pending acks, gives back every unsettled message (a Nack with
   * no delay in shared modes; exclusive consumers get them again after their committed
   * offset anyway) and ends the stream. Never acks anything that was not acked.
   */
  close(): Promise<void> {
    if (!this.closing) this.closing = this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.stopReceiving();
    if (this.state !== "failed") this.setState("closing");
    this.queue.length = 0;
    await this.acks.drain();
    await Promise.allSettled([...this.settling]);
    const left = [...this.unsettled.values()].filter((m) => m.release());
    this.unsettled.clear();
    if (left.length > 0 && this.name !== "" && this.mode !== "exclusive" && !this.fatal) {
      await this.client
        .unary("Nack", { topic: this.topic, consumer: this.name, offsets: left.map((m) => m.offset), delay: duration(0) }, { retry: false })
        .catch(() => undefined);
    }
    this.released = true;
    this.stop.abort();
    this.call?.cancel();
    await this.loopDone;
    await Promise.allSettled([...this.settling]);
    if (this.state !== "failed") this.setState("closed");
  }

  // --- SettleTarget ---

  settle(message: Message, how: Settlement, options: { delayMs?: number; reason?: string }): Promise<void> {
    if (this.unsettled.get(message.offset) === message) this.unsettled.delete(message.offset);
    if (this.name === "") return Promise.resolve();
    let done: Promise<void>;
    if (how === "acked") {
      done = this.acks.ack(message.offset, message.seekEpoch);
    } else {
      if (how === "nacked" && this.mode === "exclusive") {
        // The server rewinds to the committed offset: what comes again is not a duplicate.
        const before = BigInt(message.offset) - 1n;
        if (this.delivered === undefined || before < this.delivered) this.delivered = before;
      }
      const request: Record<string, unknown> = { topic: this.topic, consumer: this.name, offsets: [message.offset] };
      if (how === "dead-lettered") {
        request.deadLetter = true;
        request.reason = options.reason ?? "";
      } else if (options.delayMs !== undefined) {
        request.delay = duration(options.delayMs);
      }
      done = this.client.unary<void>("Nack", request).then(() => undefined);
    }
    this.settling.add(done);
    const forget = () => this.settling.delete(done);
    done.then(forget, forget);
    return done;
  }

  async extend(messages: Message[], deadlineMs?: number): Promise<void> {
    if (this.name === "" || this.mode === "exclusive" || messages.length === 0) return;
    const request: Record<string, unknown> = { topic: this.topic, consumer: this.name, offsets: messages.map((m) => m.offset) };
    if (deadlineMs !== undefined) request.deadline = duration(deadlineMs);
    try {
      await this.client.unary("ExtendAckDeadline", request);
    } catch (err) {
      // NOT_SHARED: exclusive consumers have no deadline to extend.
      if ((err as PulsebusError).code === 9 /* FAILED_PRECONDITION */ && this.mode === undefined) {
        this.mode = "exclusive";
        return;
      }
      throw err;
    }
  }

  // --- the stream ---

  private setState(state: ConsumerState): void {
    if (this.state === state) return;
    this.state = state;
    this.emit("state", state);
  }

  private async loop(): Promise<void> {
    const backoff = new Backoff(this.options.backoff ?? this.client.options.backoff);
    while (!this.stop.signal.aborted) {
      this.setState(this.streams === 0 ? "connecting" : "reconnecting");
      const { error, received } = await this.stream();
      if (this.stop.signal.aborted) break;
      if (error && !isTransientForStream(error.code)) {
        this.fail(error);
        return;
      }
      if (received) backoff.reset();
      const retryInMs = backoff.next();
      this.emit("disconnected", { error, retryInMs });
      await pause(retryInMs, this.stop.signal);
    }
    // Stopped by close() or by the client closing: iteration ends.
    this.stopReceiving();
    if (!this.closing) this.setState("closed");
  }

  /** One Subscribe stream, until it ends, fails or goes quiet. */
  private stream(): Promise<{ error?: PulsebusError; received: boolean }> {
    this.streams += 1;
    return new Promise((resolve) => {
      let received = false;
      let ended = false;
      const stub = this.client.stub;
      const call = stub.Subscribe(subscribeRequest(this.topic, this.name, this.options, this.name === "" ? this.delivered : undefined, this.lastSeen) as never, this.client.metadata());
      this.call = call;
      const quietMs = this.options.heartbeatTimeoutMs ?? 15_000;
      const finish = (error?: PulsebusError) => {
        if (ended) return;
        ended = true;
        clearTimeout(watchdog);
        this.stop.signal.removeEventListener("abort", cancel);
        resolve({ error, received });
      };
      const cancel = () => call.cancel();
      const dead = () => {
        finish(new PulsebusError("Subscribe", 4 /* DEADLINE_EXCEEDED */, `no message (record or heartbeat) for ${quietMs} ms: the stream is taken for dead`));
        call.cancel();
        this.client.resetChannel(stub);
      };
      let watchdog = setTimeout(dead, quietMs);
      this.stop.signal.addEventListener("abort", cancel, { once: true });
      call.on("data", (m: SubscribeResponse__Output) => {
        if (ended) return;
        received = true;
        clearTimeout(watchdog);
        watchdog = setTimeout(dead, quietMs);
        this.handle(m);
      });
      call.on("error", (err) => finish(PulsebusError.from("Subscribe", err)));
      call.on("end", () => finish(new PulsebusError("Subscribe", 14 /* UNAVAILABLE */, "the server ended the stream")));
    });
  }

  private handle(m: SubscribeResponse__Output): void {
    // An ephemeral subscription gets no Attached: its stream is up once anything comes.
    if (this.name === "" && (this.state === "connecting" || this.state === "reconnecting")) this.setState("attached");
    switch (m.message) {
      case "record":
        return this.onRecord(m.record!);
      case "batch":
        this.batchesReceived += 1;
        for (const record of m.batch!.records) this.onRecord(record);
        return;
      case "heartbeat":
        this.emit("heartbeat", m.heartbeat as Heartbeat__Output);
        return;
      case "attached": {
        const { committedOffset, seekEpoch } = m.attached!;
        const committed = BigInt(committedOffset);
        if (this.epoch !== seekEpoch || this.delivered === undefined || committed > this.delivered) this.delivered = committed;
        this.epoch = seekEpoch;
        this.setState("attached");
        this.emit("attached", { committedOffset, seekEpoch });
        this.learn();
        return;
      }
      case "standby":
        this.setState("standby");
        this.emit("standby");
        return;
      case "caughtUp":
        this.emit("caughtUp", m.caughtUp!.headOffset);
        return;
      case "repositioned": {
        const { committedOffset, seekEpoch } = m.repositioned!;
        this.delivered = BigInt(committedOffset);
        this.epoch = seekEpoch;
        this.emit("repositioned", { committedOffset, seekEpoch });
        return;
      }
    }
  }

  private onRecord(record: NonNullable<SubscribeResponse__Output["record"]>): void {
    const offset = BigInt(record.offset);
    if (this.mode === "exclusive" && this.delivered !== undefined && offset <= this.delivered) {
      // Redelivered after a reconnect while we still hold (or already settled) it.
      this.duplicatesDropped += 1;
      this.emit("duplicate", record.offset);
      return;
    }
    // Shared modes may deliver below it legitimately (redeliveries, key-shared subjects).
    if (this.delivered === undefined || offset > this.delivered) this.delivered = offset;
    if (record.event && (this.lastSeen === undefined || offset > this.lastSeen.offset)) {
      this.lastSeen = { offset, eventId: record.event.id };
    }
    const message = new Message(record, this.name === "" ? undefined : this.epoch, this);
    this.unsettled.set(message.offset, message);
    if (!this.receiving) {
      // Stopping: not handed out. close() gives it back with the others, or, once it
      // has, here and now (the stream end would too, but later).
      if (this.released) void message.nack(0).catch(() => undefined);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(message);
    else this.queue.push(message);
  }

  /** Learns the consumer's mode and ack deadline from ListConsumers, once. */
  private learn(): void {
    if (this.learned || this.name === "") return;
    this.learned = true;
    this.client
      .listConsumers(this.topic)
      .then((consumers) => {
        const info = consumers.find((c) => c.name === this.name);
        if (!info?.config) return;
        const mode = info.config.mode as unknown as string;
        if (this.mode === undefined) {
          this.mode = mode === "DELIVERY_MODE_SHARED" ? "shared" : mode === "DELIVERY_MODE_KEY_SHARED" ? "key_shared" : "exclusive";
        }
        this.ackDeadlineMs ??= durationMs(info.config.ackDeadline);
      })
      .catch(() => {
        this.learned = false;
      });
  }

  private fail(error: PulsebusError): void {
    this.fatal = error;
    this.receiving = false;
    this.setState("failed");
    for (const w of this.waiters.splice(0)) w.reject(error);
    if (this.listenerCount("failed") > 0) this.emit("failed", error);
  }
}
