// EduPulse protobuf payloads (packed as proto_data) and JSON payloads (text_data) come
// back from a consumer as they were published.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { connect } from "@edupulse/pulsebus";
import { SERVER_URL, uniqueTopic, take } from "./support.mjs";

const client = connect(SERVER_URL);
after(() => client.close());

test("a QuizSubmitted and a JSON event come back decoded, with their attributes", async () => {
  const topic = uniqueTopic("payloads");
  const submittedAt = new Date("2026-03-01T10:20:30.456Z");
  const quiz = await client.publishEduPulse(
    topic,
    "quiz.submitted",
    "QuizSubmitted",
    { quizId: "q-1", lessonId: "l-7", studentId: "s-9", score: 8, maxScore: 10, attempt: 2, submittedAt },
    { subject: "student/s-9", source: "quiz-service", attributes: { tenant: "school-3" } },
  );
  const json = await client.publishJson(topic, "lesson.published", { lesson_id: "42", title: "Fractions", tags: ["math"] }, { subject: "lesson/42" });
  assert.deepEqual([quiz.offset, json.offset], ["1", "2"]);

  const consumer = client.consumer(topic, "");
  const [first, second] = await take(consumer, 2);
  await consumer.close();

  assert.equal(first.id, quiz.id);
  assert.equal(first.type, "quiz.submitted");
  assert.equal(first.kind, "QuizSubmitted");
  assert.equal(first.subject, "student/s-9");
  assert.equal(first.source, "quiz-service");
  assert.deepEqual(first.attributes, { tenant: "school-3" });
  const decoded = first.decode("QuizSubmitted");
  assert.deepEqual(
    { ...decoded, submittedAt: undefined },
    { quizId: "q-1", lessonId: "l-7", studentId: "s-9", score: 8, maxScore: 10, attempt: 2, submittedAt: undefined },
  );
  assert.equal(Number(decoded.submittedAt.seconds) * 1000 + decoded.submittedAt.nanos / 1e6, submittedAt.getTime());
  assert.throws(() => first.decode("LessonPublished"), /not a LessonPublished/);

  assert.equal(second.id, json.id);
  assert.equal(second.contentType, "application/json");
  assert.equal(second.kind, undefined);
  assert.deepEqual(second.json(), { lesson_id: "42", title: "Fractions", tags: ["math"] });
});

test("the server reads a packed EduPulse payload as that message (SQL sees its fields)", async () => {
  const topic = uniqueTopic("typed");
  // The server decodes known types at publish: a payload that is not a QuizSubmitted is refused.
  await assert.rejects(
    client.publish(topic, [{ type: "quiz.submitted", protoData: { type_url: "type.googleapis.com/edupulse.events.v1.QuizSubmitted", value: Buffer.from([0xff, 0xff, 0xff]) } }]),
    (err) => err.codeName === "INVALID_ARGUMENT" && /QuizSubmitted/.test(err.details),
  );
  const ok = await client.publishEduPulse(topic, "badge.awarded", "BadgeAwarded", { badgeId: "b-1", studentId: "s-2", badgeName: "Streak" });
  assert.equal(ok.offset, "1");
});
