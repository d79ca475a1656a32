// An exclusive consumer rides out a server restart: it reconnects with back-off,
// resumes from the committed offset the server kept, drops the redeliveries of what it
// still holds, and hands out every record once, in order.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, control, take, within, consumerInfo } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("across a restart every record comes once and in order, and the unacked ones are not handed out twice", async () => {
  const topic = uniqueTopic("restart");
  await client.publish(topic, numbered("quiz.submitted", 20));
  const consumer = client.consumer(topic, "grader", { mode: "exclusive" });
  const caughtUp = once(consumer, "caughtUp");
  const firstTen = await take(consumer, 10);
  await Promise.all(firstTen.map((m) => m.ack()));
  // Everything up to the head (20) reached the client: 11..20 wait in its queue, unacked.
  await within(20_000, caughtUp, "caughtUp");

  const reattached = once(consumer, "attached");
  await control("restart");
  await within(30_000, reattached, "the consumer attaching to the restarted server");
  await client.publish(topic, numbered("quiz.submitted", 20));
  const rest = await take(consumer, 30, 30_000);
  await Promise.all(rest.map((m) => m.ack()));

  const offsets = [...firstTen, ...rest].map((m) => Number(m.offset));
  assert.deepEqual(offsets, Array.from({ length: 40 }, (_, i) => i + 1));
  assert.ok(consumer.streams >= 2, `reconnected (streams: ${consumer.streams})`);
  assert.equal(consumer.duplicatesDropped, 10, "the server redelivered 11..20, which the client still held");
  await consumer.close();
  const info = await consumerInfo(client, topic, "grader");
  assert.equal(info.committedOffset, "40");
});
