// run(handler): a handler that returns Retry (or throws) gets the record again with
// deliveryAttempt 2; one that returns Fail sends it to <topic>.dlq with the reason.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect, Retry, Fail } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, within, deferred, consumerInfo, take } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("Retry and a thrown error redeliver with attempt 2; Fail dead-letters with the reason", async () => {
  const topic = uniqueTopic("retry");
  await client.publish(topic, [
    { type: "retry-me", subject: "a" },
    { type: "throw-once", subject: "b" },
    { type: "fail-me", subject: "c" },
    { type: "fine", subject: "d" },
  ]);
  const consumer = client.consumer(topic, "worker", {
    mode: "shared",
    config: { minBackoffMs: 0, maxBackoffMs: 0, ackDeadlineMs: 30_000 },
  });
  const stop = new AbortController();
  const deliveries = [];
  const settledAll = deferred();
  const errors = [];
  const running = consumer.run(
    async (m) => {
      deliveries.push(`${m.type}#${m.deliveryAttempt}`);
      const finished = () => deliveries.length === 6 && settledAll.resolve();
      try {
        if (m.type === "retry-me" && m.deliveryAttempt === 1) return Retry(50);
        if (m.type === "throw-once" && m.deliveryAttempt === 1) throw new Error("flaky dependency");
        if (m.type === "fail-me") return Fail("payload cannot be processed");
      } finally {
        finished();
      }
    },
    { concurrency: 4, signal: stop.signal, onError: (e) => errors.push(e.message) },
  );

  await within(30_000, settledAll.promise, "six deliveries");
  stop.abort();
  await running;

  assert.deepEqual(deliveries.sort(), ["fail-me#1", "fine#1", "retry-me#1", "retry-me#2", "throw-once#1", "throw-once#2"]);
  assert.deepEqual(errors, ["flaky dependency"]);
  const info = await consumerInfo(client, topic, "worker");
  assert.equal(info.committedOffset, "4");
  assert.equal(info.deadLettered, "1");

  const dlq = client.consumer(`${topic}.dlq`, "");
  const [dead] = await take(dlq, 1);
  await dlq.close();
  assert.equal(dead.type, "fail-me");
  assert.equal(dead.attributes["pulsebus.dead_letter.reason"], "payload cannot be processed");
  assert.equal(dead.attributes["pulsebus.dead_letter.offset"], "3");
});
