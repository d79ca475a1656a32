// The async iterator: each message's ack() resolves once the server committed it, and
// ListConsumers then shows the consumer's committed offset there.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, consumerInfo, within } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("acking the first three of five moves the committed offset to 3, and the rest come next time", async () => {
  const topic = uniqueTopic("iterate");
  await client.publish(topic, numbered("lesson.published", 5));

  const seen = [];
  const consumer = client.consumer(topic, "indexer", { mode: "exclusive" });
  await within(20_000, (async () => {
    for await (const message of consumer) {
      seen.push(message.json().n);
      await message.ack();
      if (seen.length === 3) break; // closes the consumer
    }
  })(), "three messages");

  assert.deepEqual(seen, [1, 2, 3]);
  const info = await consumerInfo(client, topic, "indexer");
  assert.equal(info.committedOffset, "3");
  assert.equal(info.lag, "2");
  assert.equal(consumer.state, "closed");

  const again = client.consumer(topic, "indexer");
  const next = await within(20_000, again.next(), "the fourth message");
  assert.equal(next.offset, "4");
  await again.close();
  // Closing without settling it gave it back: nothing was acked.
  assert.equal((await consumerInfo(client, topic, "indexer")).committedOffset, "3");
});
