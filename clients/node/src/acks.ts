// Coalesced acks: individual offsets collected for a short linger (or until a batch is
// full) and sent as one AckRequest per seek epoch; each ack() resolves once the Ack that
// carried it was answered.
import type { Client } from "./client.js";
import { PulsebusError } from "./errors.js";

interface Batch {
  offsets: string[];
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

export class AckBatcher {
  private batches = new Map<string, Batch>();
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(
    private readonly client: Client,
    private readonly topic: string,
    private readonly consumer: string,
    private readonly lingerMs: number,
    /** Flush at this many pending offsets (kept under max_in_flight so the stream never stalls on acks we hold). */
    private readonly maxBatch: number,
    private readonly onError: (error: PulsebusError) => void,
  ) {}

  /** Queues one offset delivered under `epoch` (undefined: the ack always applies). */
  ack(offset: string, epoch: string | undefined): Promise<void> {
    const key = epoch ?? "";
    let batch = this.batches.get(key);
    if (!batch) {
      batch = { offsets: [], waiters: [] };
      this.batches.set(key, batch);
    }
    const done = new Promise<void>((resolve, reject) => batch!.waiters.push({ resolve, reject }));
    batch.offsets.push(offset);
    this.count += 1;
    if (this.count >= this.maxBatch) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), this.lingerMs);
    return done;
  }

  /** Sends every pending batch now. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batches = this.batches;
    this.batches = new Map();
    this.count = 0;
    for (const [epoch, batch] of batches) {
      const request: Record<string, unknown> = { topic: this.topic, consumer: this.consumer, offsets: batch.offsets };
      if (epoch) request.seekEpoch = epoch;
      const sent = this.client
        .unary("Ack", request)
        .then(
          () => batch.waiters.forEach((w) => w.resolve()),
          (err) => {
            const error = PulsebusError.from("Ack", err);
            this.onError(error);
            batch.waiters.forEach((w) => w.reject(error));
          },
        )
        .finally(() => this.inFlight.delete(sent));
      this.inFlight.add(sent);
    }
  }

  /** Flushes and waits until every Ack sent so far was answered. */
  async drain(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }
}
