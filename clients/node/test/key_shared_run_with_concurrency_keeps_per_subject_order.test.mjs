// run() with concurrency > 1 on a key-shared consumer: subjects are handled in parallel,
// the records of one subject one at a time and in offset order.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { setImmediate as tick } from "node:timers/promises";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, numbered, within, deferred } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("four subjects, concurrency 8: each subject in order and never two at once, subjects in parallel", async () => {
  const topic = uniqueTopic("keyshared");
  const subjects = ["student/1", "student/2", "student/3", "student/4"];
  const events = numbered("pulse.submitted", 200, (i) => subjects[i % 4]);
  await client.publish(topic, events);

  const consumer = client.consumer(topic, "pulse", { mode: "key_shared", maxInFlight: 100 });
  const stop = new AbortController();
  const bySubject = new Map(subjects.map((s) => [s, []]));
  const busy = new Set();
  let overlapInSubject = 0;
  let running = 0;
  let mostRunning = 0;
  let count = 0;
  const done = deferred();
  const run = consumer.run(
    async (m) => {
      if (busy.has(m.subject)) overlapInSubject += 1;
      busy.add(m.subject);
      running += 1;
      mostRunning = Math.max(mostRunning, running);
      // Some work of varying length, yielding to the event loop.
      for (let i = 0; i < (Number(m.offset) * 7) % 13; i++) await tick();
      bySubject.get(m.subject).push(Number(m.offset));
      running -= 1;
      busy.delete(m.subject);
      if (++count === 200) done.resolve();
    },
    { concurrency: 8, signal: stop.signal },
  );
  await within(60_000, done.promise, "200 records handled");
  stop.abort();
  await run;

  assert.equal(overlapInSubject, 0, "never two records of one subject at once");
  for (const [subject, offsets] of bySubject) {
    assert.equal(offsets.length, 50, subject);
    assert.deepEqual(offsets, [...offsets].sort((x, y) => x - y), `${subject} in offset order`);
  }
  assert.ok(mostRunning > 1, `subjects ran in parallel (at most ${mostRunning} at once)`);
});
