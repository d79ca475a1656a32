// run() keeps a shared consumer's record from going to someone else while its handler
// still works on it (ExtendAckDeadline), up to maxExtensionMs.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as work } from "node:timers/promises";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, within, deferred, consumerInfo } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

const config = { ackDeadlineMs: 1000, minBackoffMs: 0, maxBackoffMs: 0 };

test("a handler working for 3 deadlines keeps its record: delivered once, never redelivered", async () => {
  const topic = uniqueTopic("extend");
  await client.publish(topic, [{ type: "slow.job" }]);
  const consumer = client.consumer(topic, "slow", { mode: "shared", config });
  const stop = new AbortController();
  const attempts = [];
  const done = deferred();
  const run = consumer.run(
    async (m) => {
      attempts.push(m.deliveryAttempt);
      await work(3000); // the slow work itself, three ack deadlines long
      done.resolve();
    },
    { concurrency: 2, signal: stop.signal },
  );
  await within(20_000, done.promise, "the slow handler");
  stop.abort();
  await run;

  assert.deepEqual(attempts, [1]);
  const info = await consumerInfo(client, topic, "slow");
  assert.equal(info.redelivered, "0");
  assert.equal(info.committedOffset, "1");
});

test("past maxExtensionMs the deadline is left to expire and the record comes again", async () => {
  const topic = uniqueTopic("extend-max");
  await client.publish(topic, [{ type: "stuck.job" }]);
  const consumer = client.consumer(topic, "stuck", { mode: "shared", config });
  const stop = new AbortController();
  const again = deferred();
  const release = deferred();
  const run = consumer.run(
    async (m) => {
      if (m.deliveryAttempt === 1) await release.promise; // stuck until the redelivery came
      else again.resolve(m.deliveryAttempt);
    },
    { concurrency: 2, signal: stop.signal, maxExtensionMs: 1500 },
  );
  const attempt = await within(20_000, again.promise, "the redelivery after the extension limit");
  release.resolve();
  stop.abort();
  await run;
  assert.equal(attempt, 2);
});
