// Two subscribers of one shared consumer, each in run(): the events are split between
// them and every one is handled once.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, within, deferred, consumerInfo } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("two shared subscribers split 100 events, each handled exactly once", async () => {
  const topic = uniqueTopic("shared");
  const options = { mode: "shared", maxInFlight: 10, config: { ackDeadlineMs: 30_000 } };
  const a = client.consumer(topic, "mailer", options);
  const b = client.consumer(topic, "mailer", options);
  const stop = new AbortController();
  const handled = { a: [], b: [] };
  const attempts = [];
  const all = deferred();
  // Each side holds its first records until the other side has one too: with at most 10
  // in flight per subscriber, neither can take all 100.
  const started = { a: deferred(), b: deferred() };
  const handler = (side, other) => async (m) => {
    started[side].resolve();
    await started[other].promise;
    handled[side].push(Number(m.offset));
    attempts.push(m.deliveryAttempt);
    if (handled.a.length + handled.b.length === 100) all.resolve();
  };
  const attached = Promise.all([once(a, "attached"), once(b, "attached")]);
  const runs = [
    a.run(handler("a", "b"), { concurrency: 10, signal: stop.signal }),
    b.run(handler("b", "a"), { concurrency: 10, signal: stop.signal }),
  ];
  await within(20_000, attached, "both subscribers attached");

  await client.publish(topic, numbered("notification.requested", 100));
  await within(60_000, all.promise, "100 events handled");
  stop.abort();
  await within(20_000, Promise.all(runs), "both runs to finish");

  const union = [...handled.a, ...handled.b].sort((x, y) => x - y);
  assert.deepEqual(union, Array.from({ length: 100 }, (_, i) => i + 1), "each once");
  assert.ok(handled.a.length > 0 && handled.b.length > 0, `split: ${handled.a.length} / ${handled.b.length}`);
  assert.ok(attempts.every((n) => n === 1), "no redelivery");
  const info = await consumerInfo(client, topic, "mailer");
  assert.equal(info.committedOffset, "100");
  assert.equal(info.inFlight, "0");
});
