// Publishing is retry-safe: the client gives every event a UUIDv7 before the first
// attempt, so the same event sent twice (or retried across an outage) is one record.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, control, within } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("the same event published twice is stored once, with its offset both times", async () => {
  const topic = uniqueTopic("dedup");
  const event = { type: "lesson.published", contentType: "application/json", textData: '{"lesson_id":"42"}' };
  const [first] = await client.publish(topic, [event]);
  assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "a client-assigned UUIDv7");

  const [again] = await client.publish(topic, [{ ...event, id: first.id }]);

  assert.equal(first.duplicate, false);
  assert.equal(again.duplicate, true);
  assert.equal(again.offset, first.offset);
  const { records, headOffset } = await client.read(topic);
  assert.equal(records.length, 1);
  assert.equal(headOffset, "1");
});

test("a batching publisher tells each caller its own offset", async () => {
  const topic = uniqueTopic("batch");
  const publisher = client.publisher(topic, { lingerMs: 20, maxEvents: 7 });

  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => publisher.publish({ type: "quiz.submitted", textData: `n${i}` })),
  );
  await publisher.close();

  assert.deepEqual(
    results.map((r) => r.offset),
    Array.from({ length: 20 }, (_, i) => String(i + 1)),
  );
  const { records } = await client.read(topic, 1, 100);
  assert.deepEqual(
    records.map((r) => r.event.textData),
    Array.from({ length: 20 }, (_, i) => `n${i}`),
  );
});

test("a publish that meets a stopped server retries until it is back, and is stored once", async () => {
  const topic = uniqueTopic("outage");
  await client.publish(topic, [{ type: "warmup" }]);
  await control("stop");

  const publishing = client.publish(topic, [{ type: "badge.awarded", textData: "once" }]);
  await control("start");
  const [result] = await within(60_000, publishing, "the retried publish");

  assert.equal(result.offset, "2");
  const { records } = await client.read(topic);
  assert.deepEqual(
    records.map((r) => r.event.type),
    ["warmup", "badge.awarded"],
  );
});

test("a refused publish is a PulsebusError with the status code and the server's message", async () => {
  const topic = uniqueTopic("refused");
  await assert.rejects(client.publish(topic, [{ id: "abc", type: "x" }]), (err) => {
    assert.equal(err.name, "PulsebusError");
    assert.equal(err.codeName, "INVALID_ARGUMENT");
    assert.equal(err.code, 3);
    assert.match(err.details, /events\[0\]\.id/);
    return true;
  });
});
