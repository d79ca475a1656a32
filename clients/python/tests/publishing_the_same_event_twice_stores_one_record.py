"""Publishing is retry-safe: the client gives every event a UUIDv7 before the first
attempt, so publishing the same event again (as a retry does) is answered with
duplicate=True and the original offset, and the topic holds one record. A publish made
while the server is down is retried with back-off until it is back, and stored once.
"""

import asyncio
import logging
import uuid

import pulsebus
from support import ask, check, connect, main, within

TOPIC = "py-idempotent"


class Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():
            self.seen.set()  # logged on the event loop's thread


async def test() -> None:
    async with connect(retry_for=60.0) as client:
        event = pulsebus.json_event("lesson.published", {"lesson_id": "42"}, subject="lesson/42")
        first = await client.publish(TOPIC, [event])
        check(uuid.UUID(event.id).version == 7, f"the client assigned a UUIDv7, got {event.id!r}")
        again = await client.publish(TOPIC, [event])
        check(not first[0].duplicate and first[0].offset == 1, f"first publish: {first}")
        check(again[0].duplicate and again[0].offset == 1, f"the same event again: {again}")

        # A publish while the server is down: UNAVAILABLE, retried until it is back.
        retries = Retries()
        logging.getLogger("pulsebus").addHandler(retries)
        await ask("stop")
        late = pulsebus.json_event("lesson.published", {"lesson_id": "43"})
        publishing = asyncio.create_task(client.publish(TOPIC, [late]))
        await within(retries.seen.wait(), "a retried publish")
        await ask("start")
        (result,) = await within(publishing, "the publish after the server came back")
        check(result.offset == 2 and not result.duplicate, f"the retried publish: {result}")
        (dup,) = await client.publish(TOPIC, [late])
        check(dup.duplicate and dup.offset == 2, f"publishing the retried event again: {dup}")

        page = await client.read(TOPIC)
        check([r.event.id for r in page.records] == [event.id, late.id],
              f"the topic holds each event once: {[(r.offset, r.event.id) for r in page.records]}")


main(test)
