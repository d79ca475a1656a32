// Batched publishing: events handed to one Publisher within a linger time (or until a
// size cap) go out as one Publish; each caller still gets its own result.
import { v7 as uuidv7 } from "uuid";
import type { Client, EventInput, PublishResult } from "./client.js";

export interface PublisherOptions {
  /** How long the first event of a batch waits for company, ms (default 5). */
  lingerMs?: number;
  /** Most events per Publish (default 500; the server's default limit is 1000). */
  maxEvents?: number;
  /** Most payload bytes per Publish, roughly (default 4 MiB; the server's default limit is 8 MiB). */
  maxBytes?: number;
}

interface Pending {
  event: EventInput;
  resolve: (result: PublishResult) => void;
  reject: (error: unknown) => void;
}

export class Publisher {
  private pending: Pending[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();
  private readonly lingerMs: number;
  private readonly maxEvents: number;
  private readonly maxBytes: number;

  constructor(
    private readonly client: Client,
    readonly topic: string,
    options: PublisherOptions = {},
  ) {
    this.lingerMs = options.lingerMs ?? 5;
    this.maxEvents = options.maxEvents ?? 500;
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  }

  /** Queues one event; resolves with its offset once its batch is committed. */
  publish(event: EventInput): Promise<PublishResult> {
    const withId = { ...event, id: event.id || uuidv7() };
    const size = approximateSize(withId);
    if (this.pending.length > 0 && this.bytes + size > this.maxBytes) this.flush();
    return new Promise((resolve, reject) => {
      this.pending.push({ event: withId, resolve, reject });
      this.bytes += size;
      if (this.pending.length >= this.maxEvents || this.bytes >= this.maxBytes) {
        this.flush();
      } else if (!this.timer) {
        this.timer = setTimeout(() => this.flush(), this.lingerMs);
      }
    });
  }

  /** Sends what is queued now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    this.bytes = 0;
    if (batch.length === 0) return;
    const sent = this.client
      .publish(
        this.topic,
        batch.map((p) => p.event),
      )
      .then(
        (results) => batch.forEach((p, i) => p.resolve(results[i])),
        (error) => batch.forEach((p) => p.reject(error)),
      )
      .finally(() => this.inFlight.delete(sent));
    this.inFlight.add(sent);
  }

  /** Sends what is queued and waits until every batch has been answered. */
  async close(): Promise<void> {
    this.flush();
    await Promise.all([...this.inFlight]);
  }
}

function approximateSize(event: EventInput): number {
  let size = 256 + (event.type?.length ?? 0) + (event.subject?.length ?? 0);
  if (typeof event.textData === "string") size += Buffer.byteLength(event.textData);
  if (event.binaryData) size += event.binaryData.length;
  const any = event.protoData as { value?: Uint8Array } | null | undefined;
  if (any?.value) size += any.value.length;
  for (const [k, v] of Object.entries(event.attributes ?? {})) size += k.length + v.length;
  return size;
}
