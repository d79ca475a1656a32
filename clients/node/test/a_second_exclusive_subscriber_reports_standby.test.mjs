// Two subscribers of one exclusive consumer: the second says it is on standby (an event
// and its state), and takes over when the first closes.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, within, take } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("the second subscriber reports standby, then attaches and gets the next record when the first leaves", async () => {
  const topic = uniqueTopic("standby");
  const first = client.consumer(topic, "projector", { mode: "exclusive" });
  const second = client.consumer(topic, "projector", { mode: "exclusive" });
  const states = [];
  second.on("state", (s) => states.push(s));

  const firstAttached = once(first.start(), "attached");
  await within(20_000, firstAttached, "the first subscriber attached");
  const standby = once(second.start(), "standby");
  await within(20_000, standby, "the standby report");
  assert.equal(second.state, "standby");

  const takeover = once(second, "attached");
  await first.close();
  await within(30_000, takeover, "the standby taking over");
  await client.publish(topic, [{ type: "projection.rebuilt" }]);
  const [record] = await take(second, 1);
  await record.ack();
  await second.close();

  assert.equal(record.offset, "1");
  assert.deepEqual(states, ["connecting", "standby", "attached", "closing", "closed"]);
});
