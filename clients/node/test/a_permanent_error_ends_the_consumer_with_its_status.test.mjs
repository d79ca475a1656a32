// An error that another attempt cannot fix (here: subscribing in another mode than the
// consumer has) is not retried: the iterator and run() throw it, with its status.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, within, take } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("a mode mismatch fails the iterator and run() with FAILED_PRECONDITION, and the state says failed", async () => {
  const topic = uniqueTopic("mismatch");
  await client.publish(topic, [{ type: "x" }]);
  const shared = client.consumer(topic, "jobs", { mode: "shared" });
  const [held] = await take(shared, 1);
  await held.ack();

  const exclusive = client.consumer(topic, "jobs", { mode: "exclusive" });
  const failed = within(20_000, (async () => {
    for await (const m of exclusive) assert.fail(`no record expected, got ${m.offset}`);
  })(), "the iterator to fail");
  await assert.rejects(failed, (err) => {
    assert.equal(err.name, "PulsebusError");
    assert.equal(err.codeName, "FAILED_PRECONDITION");
    assert.match(err.details, /mode/i);
    assert.equal(err.reason, "MODE_MISMATCH", "the ErrorInfo reason of grpc-status-details-bin");
    return true;
  });
  assert.equal(exclusive.state, "failed");

  const again = client.consumer(topic, "jobs", { mode: "key_shared" });
  await assert.rejects(within(20_000, again.run(() => {}), "run() to fail"), (err) => err.codeName === "FAILED_PRECONDITION");
  await shared.close();
});
