// Consuming throughput against a running server: publishes N events to a fresh topic,
// then consumes them with (a) raw @grpc/grpc-js stubs that ack each record at once and
// (b) the client's run() with a handler that returns at once; prints events/s of each.
//
//   PULSEBUS_URL=http://127.0.0.1:50051 node bench/throughput.mjs [N=20000] [maxInFlight=1000]
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { connect } from "@edupulse/pulsebus";

const url = process.env.PULSEBUS_URL ?? "http://127.0.0.1:50051";
const total = Number(process.argv[2] ?? 20_000);
const maxInFlight = Number(process.argv[3] ?? 1000);
const topic = `bench-${Date.now().toString(36)}`;
const rate = (n, ms) => Math.round((n / ms) * 1000);

const client = connect(url);

// Publish, 500 events per request.
let started = performance.now();
for (let sent = 0; sent < total; sent += 500) {
  const n = Math.min(500, total - sent);
  await client.publish(
    topic,
    Array.from({ length: n }, (_, i) => ({ type: "bench.event", contentType: "application/json", textData: `{"n":${sent + i}}` })),
  );
}
const publishMs = performance.now() - started;
console.log(`publish (batches of 500): ${total} events in ${publishMs.toFixed(0)} ms = ${rate(total, publishMs)} events/s`);

// (a) Raw stubs: Subscribe, and one cumulative Ack per record as it arrives.
const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "proto");
const definition = protoLoader.loadSync("pulsebus/v1/pulsebus.proto", { longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir] });
const { EventBus } = grpc.loadPackageDefinition(definition).pulsebus.v1;
const stub = new EventBus(url.replace(/^https?:\/\//, ""), grpc.credentials.createInsecure());
started = performance.now();
await new Promise((resolve, reject) => {
  let received = 0;
  let answered = 0;
  const call = stub.Subscribe({ topic, consumer: "raw", maxInFlight });
  call.on("data", (m) => {
    if (m.message !== "record") return;
    received += 1;
    stub.Ack({ topic, consumer: "raw", offset: m.record.offset }, (err) => {
      if (err) return reject(err);
      if (++answered === total) {
        call.cancel();
        resolve();
      }
    });
  });
  call.on("error", (err) => err.code !== grpc.status.CANCELLED && reject(err));
});
const rawMs = performance.now() - started;
stub.close();
console.log(`(a) raw @grpc/grpc-js, ack each at once: ${total} events in ${rawMs.toFixed(0)} ms = ${rate(total, rawMs)} events/s`);

// (b) The client's run(): coalesced acks, handler returns at once.
const consumer = client.consumer(topic, "run", { maxInFlight });
const stop = new AbortController();
let handled = 0;
started = performance.now();
await consumer.run(
  () => {
    if (++handled === total) stop.abort();
  },
  { signal: stop.signal },
);
const runMs = performance.now() - started; // includes the final acks and close
const [info] = (await client.listConsumers(topic)).filter((c) => c.name === "run");
console.log(`(b) client run(), handler returns at once: ${total} events in ${runMs.toFixed(0)} ms = ${rate(total, runMs)} events/s (committed ${info.committedOffset})`);
client.close();
