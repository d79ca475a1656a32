// Aborting run()'s signal stops receiving, lets the running handlers finish, acks what
// they finished, gives back what was received but not started, and closes; nothing
// unhandled is acked, nothing handled comes again, nothing held waits for its deadline.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, within, deferred, consumerInfo, take } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("on abort the three running handlers finish and are acked; the other records go to the next subscriber", async () => {
  const topic = uniqueTopic("shutdown");
  await client.publish(topic, numbered("lesson.published", 30));
  // A deadline longer than the test: records come again early only if they were given back.
  const options = { mode: "shared", maxInFlight: 10, config: { ackDeadlineMs: 120_000 } };
  const consumer = client.consumer(topic, "search", options);
  const stop = new AbortController();
  const threeRunning = deferred();
  const release = deferred();
  const started = [];
  const finished = [];
  const run = consumer.run(
    async (m) => {
      started.push(Number(m.offset));
      if (started.length === 3) threeRunning.resolve();
      await release.promise;
      finished.push(Number(m.offset));
    },
    { concurrency: 3, signal: stop.signal },
  );
  await within(20_000, threeRunning.promise, "three handlers running");
  // The client holds 10 records (max in flight): 3 in handlers, 7 waiting.
  stop.abort();
  release.resolve();
  await within(20_000, run, "run() to finish after the abort");

  assert.deepEqual(started.sort((x, y) => x - y), [1, 2, 3]);
  assert.deepEqual(finished.sort((x, y) => x - y), [1, 2, 3]);
  assert.equal(consumer.state, "closed");
  const info = await consumerInfo(client, topic, "search");
  assert.equal(info.committedOffset, "3", "the three handled records are acked, nothing else");

  const next = client.consumer(topic, "search", options);
  const seen = [];
  const all = deferred();
  const stopNext = new AbortController();
  const attached = once(next, "attached");
  const runNext = next.run(
    (m) => {
      seen.push(Number(m.offset));
      if (seen.length === 27) all.resolve();
    },
    { concurrency: 1, signal: stopNext.signal },
  );
  await within(20_000, attached, "the next subscriber");
  await within(30_000, all.promise, "the remaining 27 records, long before their ack deadline");
  stopNext.abort();
  await runNext;
  assert.deepEqual(seen.sort((x, y) => x - y), Array.from({ length: 27 }, (_, i) => i + 4));
  assert.equal((await consumerInfo(client, topic, "search")).committedOffset, "30");
});

test("with onAbort: 'nack' the running handlers' records are given back at once, not acked", async () => {
  const topic = uniqueTopic("shutdown-nack");
  await client.publish(topic, numbered("lesson.published", 5));
  const consumer = client.consumer(topic, "search", { mode: "shared", config: { minBackoffMs: 0 } });
  const stop = new AbortController();
  const running = deferred();
  const release = deferred();
  const run = consumer.run(
    async () => {
      running.resolve();
      await release.promise;
    },
    { concurrency: 1, signal: stop.signal, onAbort: "nack" },
  );
  await within(20_000, running.promise, "a handler running");
  stop.abort();
  release.resolve();
  await within(20_000, run, "run() to finish");

  assert.equal((await consumerInfo(client, topic, "search")).committedOffset, "0", "nothing acked");
  const again = client.consumer(topic, "search");
  const [first] = await take(again, 1);
  await again.close();
  assert.equal(first.offset, "1");
  assert.ok(first.deliveryAttempt >= 2, `offset 1 came again (attempt ${first.deliveryAttempt})`);
});
