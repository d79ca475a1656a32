// The connection: connect(url, options) gives a Client for publishing, consuming and
// the admin reads. Unary calls that are safe to repeat are retried on UNAVAILABLE and
// DEADLINE_EXCEEDED with exponential back-off and jitter.
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { v7 as uuidv7 } from "uuid";

import type { EventBusClient } from "./generated/pulsebus/v1/EventBus.js";
import type { Event } from "./generated/pulsebus/v1/Event.js";
import type { ConsumerInfo__Output } from "./generated/pulsebus/v1/ConsumerInfo.js";
import type { Record__Output } from "./generated/pulsebus/v1/Record.js";
import type { TopicInfo__Output } from "./generated/pulsebus/v1/TopicInfo.js";
import type { StartPosition } from "./generated/pulsebus/v1/StartPosition.js";
import type { ConsumerConfig } from "./generated/pulsebus/v1/ConsumerConfig.js";
import type { Timestamp } from "./generated/google/protobuf/Timestamp.js";
import { pulsebusProto } from "./proto.js";
import { PulsebusError, isRetryable } from "./errors.js";
import { Backoff, pause, type BackoffOptions } from "./backoff.js";
import { pack, timestamp, type EduPulseInputs, type EduPulseKind } from "./edupulse.js";
import { Consumer, type ConsumerOptions } from "./consumer.js";
import { Publisher, type PublisherOptions } from "./publisher.js";

/** TLS material: PEM text, a Buffer, or a file path. */
export type Pem = string | Buffer;

export interface ConnectOptions {
  /** Bearer token, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /** TLS (implied by an `https://` URL). `ca` to trust a private CA; `cert` + `key` for mutual TLS. */
  tls?: { ca?: Pem; cert?: Pem; key?: Pem; serverName?: string };
  /** Back-off between retries and reconnects (default 100 ms doubling to 5 s, jittered). */
  backoff?: BackoffOptions;
  /** Deadline of one unary call, ms (default 30 000). */
  callTimeoutMs?: number;
  /** How long a retried unary call keeps trying in all, ms (default 60 000). */
  retryForMs?: number;
  /** Extra @grpc/grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

/** An event to publish. `id` defaults to a fresh UUIDv7 (so a retry is deduplicated). */
export type EventInput = Omit<Event, "time"> & { time?: Date | Timestamp };

/** Where one published event went. */
export interface PublishResult {
  id: string;
  /** Offset in the topic (int64 as a decimal string, as everywhere in this client). */
  offset: string;
  /** True when the id was already in the topic: `offset` is the original one. */
  duplicate: boolean;
  appendedAt?: Date;
}

/** Optional CloudEvents attributes for the typed publish helpers. */
export type EventMeta = Omit<EventInput, "type" | "contentType" | "binaryData" | "textData" | "protoData" | "data">;

export interface CallOptions {
  /** Retry on UNAVAILABLE / DEADLINE_EXCEEDED (default true; every pulsebus call is safe to repeat with client ids). */
  retry?: boolean;
  signal?: AbortSignal;
}

/** Connects to a pulsebus server (`http://host:port`, `https://host:port` or `host:port`). */
export function connect(url: string, options: ConnectOptions = {}): Client {
  return new Client(url, options);
}

function pem(value: Pem | undefined): Buffer | null {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  return value.includes("-----BEGIN") ? Buffer.from(value) : readFileSync(value);
}

export function toDate(ts: { seconds: string | number; nanos: number } | null | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1_000_000));
}

export class Client {
  readonly target: string;
  readonly options: ConnectOptions;
  private current: EventBusClient;
  private readonly makeStub: () => EventBusClient;
  private closed = false;
  private readonly closing = new AbortController();

  constructor(url: string, options: ConnectOptions = {}) {
    this.options = options;
    let secure = options.tls !== undefined;
    let target = url;
    if (url.startsWith("https://")) {
      secure = true;
      target = url.slice("https://".length);
    } else if (url.startsWith("http://")) {
      target = url.slice("http://".length);
    }
    this.target = target.replace(/\/+$/, "");
    const credentials = secure
      ? grpc.credentials.createSsl(pem(options.tls?.ca), pem(options.tls?.key), pem(options.tls?.cert))
      : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = {
      // Come back quickly after a server restart (grpc-js defaults: 1 s up to 120 s).
      "grpc.initial_reconnect_backoff_ms": options.backoff?.initialMs ?? 100,
      "grpc.max_reconnect_backoff_ms": options.backoff?.maxMs ?? 5000,
      "grpc.keepalive_time_ms": 30_000,
      "grpc.keepalive_timeout_ms": 10_000,
      "grpc.max_receive_message_length": 64 * 1024 * 1024,
      ...(options.tls?.serverName ? { "grpc.ssl_target_name_override": options.tls.serverName } : {}),
      ...options.channelOptions,
    };
    const EventBus = pulsebusProto().pulsebus.v1.EventBus;
    this.makeStub = () => new EventBus(this.target, credentials, channelOptions);
    this.current = this.makeStub();
  }

  /** The generated @grpc/grpc-js stub, for calls this client does not wrap. */
  get stub(): EventBusClient {
    return this.current;
  }

  /**
   * Replaces the channel (a new connection) when `seen` is still the current stub: a
   * stream that went quiet may sit on a dead TCP connection that HTTP/2 keepalive would
   * notice only much later, and a new call on the same channel would hang on it too.
   */
  resetChannel(seen: EventBusClient): void {
    if (this.closed || seen !== this.current) return;
    this.current = this.makeStub();
    seen.close();
  }

  /** Call metadata: the bearer token, when there is one. */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.options.token) md.set("authorization", `Bearer ${this.options.token}`);
    return md;
  }

  /** A signal that aborts when the client closes. */
  get closeSignal(): AbortSignal {
    return this.closing.signal;
  }

  /** One unary call, retried while the error is retryable and time is left. */
  async unary<Res>(rpc: string, request: unknown, options: CallOptions = {}): Promise<Res> {
    const backoff = new Backoff(this.options.backoff);
    const giveUpAt = Date.now() + (this.options.retryForMs ?? 60_000);
    for (;;) {
      try {
        return await this.once<Res>(rpc, request);
      } catch (err) {
        const error = PulsebusError.from(rpc, err);
        const delay = backoff.next();
        const retry = options.retry ?? true;
        if (!retry || !isRetryable(error.code) || this.closed || options.signal?.aborted || Date.now() + delay > giveUpAt) {
          throw error;
        }
        await pause(delay, options.signal);
      }
    }
  }

  private once<Res>(rpc: string, request: unknown): Promise<Res> {
    return new Promise((resolve, reject) => {
      const deadline = Date.now() + (this.options.callTimeoutMs ?? 30_000);
      const method = (this.stub as unknown as Record<string, Function>)[rpc];
      method.call(this.stub, request, this.metadata(), { deadline }, (err: grpc.ServiceError | null, res: Res) =>
        err ? reject(PulsebusError.from(rpc, err)) : resolve(res),
      );
    });
  }

  /**
   * Publishes events to a topic, atomically, and returns one result per event in order.
   * Events without an id get a UUIDv7 first, so the retries after UNAVAILABLE or
   * DEADLINE_EXCEEDED that this does are deduplicated by the server (same offset,
   * `duplicate: true`).
   */
  async publish(topic: string, events: EventInput[], options: CallOptions = {}): Promise<PublishResult[]> {
    const request = { topic, events: events.map(withId) };
    const response = await this.unary<{ results: { id: string; offset: string; duplicate: boolean; appendedAt: Timestamp | null }[] }>(
      "Publish",
      request,
      options,
    );
    return response.results.map((r) => ({
      id: r.id,
      offset: r.offset,
      duplicate: r.duplicate,
      appendedAt: toDate(r.appendedAt as never),
    }));
  }

  /** Publishes one event with a JSON payload (`content_type: application/json`, `text_data`). */
  async publishJson(topic: string, type: string, data: unknown, meta: EventMeta = {}): Promise<PublishResult> {
    const [result] = await this.publish(topic, [jsonEvent(type, data, meta)]);
    return result;
  }

  /** Publishes one EduPulse event, packed as `proto_data` (an Any of `edupulse.events.v1.<kind>`). */
  async publishEduPulse<K extends EduPulseKind>(
    topic: string,
    type: string,
    kind: K,
    payload: EduPulseInputs[K],
    meta: EventMeta = {},
  ): Promise<PublishResult> {
    const [result] = await this.publish(topic, [eduPulseEvent(type, kind, payload, meta)]);
    return result;
  }

  /** A batching publisher for one topic: each `publish(event)` still resolves to its own result. */
  publisher(topic: string, options: PublisherOptions = {}): Publisher {
    return new Publisher(this, topic, options);
  }

  /** A durable (or, with an empty name, ephemeral) consumer of a topic. Nothing is received until it is iterated or run. */
  consumer(topic: string, name: string, options: ConsumerOptions = {}): Consumer {
    return new Consumer(this, topic, name, options);
  }

  async listConsumers(topic: string): Promise<ConsumerInfo__Output[]> {
    const all: ConsumerInfo__Output[] = [];
    let pageToken = "";
    do {
      const page = await this.unary<{ consumers: ConsumerInfo__Output[]; nextPageToken: string }>("ListConsumers", {
        topic,
        pageToken,
      });
      all.push(...page.consumers);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  }

  async listTopics(): Promise<TopicInfo__Output[]> {
    const all: TopicInfo__Output[] = [];
    let pageToken = "";
    do {
      const page = await this.unary<{ topics: TopicInfo__Output[]; nextPageToken: string }>("ListTopics", { pageToken });
      all.push(...page.topics);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return all;
  }

  /** One page of a topic's log from `fromOffset` (inclusive). */
  async read(topic: string, fromOffset: string | number = 0, limit = 100): Promise<{ records: Record__Output[]; headOffset: string }> {
    return this.unary("Read", { topic, fromOffset: String(fromOffset), limit });
  }

  async seek(topic: string, consumer: string, start: StartPosition): Promise<{ committedOffset: string; seekEpoch: string }> {
    return this.unary("Seek", { topic, consumer, start });
  }

  async updateConsumer(topic: string, consumer: string, config: ConsumerConfig): Promise<ConsumerInfo__Output> {
    return this.unary("UpdateConsumer", { topic, consumer, config });
  }

  /** Closes the channel; open consumers see their streams end. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    this.current.close();
  }
}

function withId(event: EventInput): Event {
  const time = event.time instanceof Date ? timestamp(event.time) : event.time;
  return { ...event, id: event.id || uuidv7(), time };
}

/** An event with a JSON payload. */
export function jsonEvent(type: string, data: unknown, meta: EventMeta = {}): EventInput {
  return { ...meta, type, contentType: "application/json", textData: JSON.stringify(data) };
}

/** An event with an EduPulse protobuf payload. */
export function eduPulseEvent<K extends EduPulseKind>(type: string, kind: K, payload: EduPulseInputs[K], meta: EventMeta = {}): EventInput {
  return { ...meta, type, contentType: "application/protobuf", protoData: pack(kind, payload) };
}
