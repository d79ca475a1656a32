// Consumers ask for batches by default (batchRecords) and hand records out one at a
// time: 300 events stored before the consumer starts come as offsets 1..300 in order,
// in fewer stream messages than records; with batchRecords 0 no batch comes at all.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect, DEFAULT_BATCH_RECORDS } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, consumerInfo, within } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

const TOTAL = 300;

async function consumeAll(topic, name, options) {
  const consumer = client.consumer(topic, name, { mode: "exclusive", ...options });
  const seen = [];
  await within(30_000, (async () => {
    for await (const message of consumer) {
      seen.push(Number(message.offset));
      await message.ack();
      if (seen.length === TOTAL) break; // closes the consumer
    }
  })(), `${TOTAL} messages of ${name}`);
  assert.deepEqual(seen, Array.from({ length: TOTAL }, (_, i) => i + 1), `${name}: in order, each once`);
  assert.equal((await consumerInfo(client, topic, name)).committedOffset, String(TOTAL));
  return consumer;
}

test("batches are asked for by default and unpacked into single messages in order", async () => {
  const topic = uniqueTopic("batches");
  for (let call = 0; call < 3; call++) await client.publish(topic, numbered("lesson.published", TOTAL / 3));
  assert.ok(DEFAULT_BATCH_RECORDS > 1);

  const batched = await consumeAll(topic, "batched", {});
  assert.ok(batched.batchesReceived > 0 && batched.batchesReceived < TOTAL, `${batched.batchesReceived} batches for ${TOTAL} records`);

  const plain = await consumeAll(topic, "plain", { batchRecords: 0 });
  assert.equal(plain.batchesReceived, 0);
});
