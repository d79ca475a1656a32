"""Typed payloads survive the trip: EduPulse protobuf messages (packed as Any, typed by
their EduPulse event type), JSON, text and binary payloads come back from a consumer
equal to what was published, with their subject, attributes and id."""

import datetime as dt

import pulsebus
from pulsebus import edupulse
from support import check, connect, main, within

TOPIC = "py-payloads"


async def test() -> None:
    now = dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.timezone.utc)
    lesson = edupulse.LessonPublished(lesson_id="42", course_id="c-1", author_id="a-7",
                                      title="Fractions", tags=["math", "year-5"])
    lesson.published_at.FromDatetime(now)
    quiz = edupulse.QuizSubmitted(quiz_id="q-1", lesson_id="42", student_id="s-9", score=7,
                                  max_score=10, attempt=2)
    payment = edupulse.PaymentProcessed(payment_id="p-1", amount_cents=1999, currency="EUR",
                                        status=edupulse.PaymentProcessed.STATUS_SUCCEEDED)
    document = {"lesson_id": "42", "score": 0.5, "tags": ["a", "b"], "nested": {"ok": True}}
    async with connect() as client:
        await client.publish_proto(TOPIC, lesson, subject="lesson/42", attributes={"tenant": "t1"})
        await client.publish_proto(TOPIC, quiz, subject="student/s-9")
        await client.publish(TOPIC, [pulsebus.proto_event(payment, type="payment.done")])
        await client.publish_json(TOPIC, "lesson.rated", document, subject="lesson/42")
        await client.publish(TOPIC, [pulsebus.text_event("note", "hello\nworld"),
                                     pulsebus.binary_event("blob", b"\x00\x01\xff")])

        async with client.consumer(TOPIC, "payloads") as consumer:
            got = [await within(consumer.next(), f"message {i + 1}") for i in range(6)]
            for message in got:
                await message.ack()

    check([m.offset for m in got] == [1, 2, 3, 4, 5, 6], f"offsets {[m.offset for m in got]}")
    check([m.type for m in got] == ["lesson.published", "quiz.submitted", "payment.done",
                                    "lesson.rated", "note", "blob"], f"types {[m.type for m in got]}")
    check(got[0].data == lesson, f"LessonPublished came back as {got[0].data}")
    check(got[0].proto(edupulse.LessonPublished).published_at.ToDatetime(dt.timezone.utc) == now,
          "published_at round-trips")
    check(got[0].subject == "lesson/42" and got[0].attributes == {"tenant": "t1"},
          f"subject/attributes {got[0].subject} {got[0].attributes}")
    check(got[1].data == quiz and isinstance(got[1].data, edupulse.QuizSubmitted), f"quiz {got[1].data}")
    check(got[2].data == payment, f"payment {got[2].data}")
    check(got[3].event.content_type == "application/json" and got[3].data == document,
          f"json {got[3].event.content_type} {got[3].data}")
    check(got[4].data == "hello\nworld", f"text {got[4].data!r}")
    check(got[5].data == b"\x00\x01\xff", f"binary {got[5].data!r}")
    try:
        got[3].proto()
    except ValueError:
        pass
    else:
        raise AssertionError("a JSON payload is not a protobuf")


main(test)
