// A consumer sends the last record it received whenever it resubscribes: once the log
// was cut back under it while the server was down (as an asynchronous PostgreSQL
// failover would leave it), the server refuses with FAILED_PRECONDITION, reason
// LOG_DIVERGED, and the consumer ends with that error instead of receiving other events
// at offsets it already saw.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, within, control } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("a consumer whose log diverged ends with LOG_DIVERGED", async () => {
  const topic = uniqueTopic("diverged");
  await client.publish(topic, numbered("lesson.published", 3));
  const consumer = client.consumer(topic, "audit", { mode: "exclusive" });
  const iterator = consumer[Symbol.asyncIterator]();
  for (const expected of [1, 2, 3]) {
    const { value } = await within(10_000, iterator.next(), `message ${expected}`);
    assert.equal(Number(value.offset), expected);
  }
  await control("stop");
  await control(`rewind ${topic} 1`);
  await control("start");
  await client.publish(topic, numbered("other", 2));
  await assert.rejects(within(30_000, iterator.next(), "the divergence"), (err) => {
    assert.equal(err.reason, "LOG_DIVERGED", String(err));
    // 2 when it resubscribed before the new events, else 3 (another event there).
    assert.ok(["2", "3"].includes(err.reasonMetadata?.offset), JSON.stringify(err.reasonMetadata));
    return true;
  });
});
