"""run() with concurrency 4 handles records of different subjects side by side but the
records of one subject one at a time, in offset order: for each of 4 subjects the
handled order is its publish order, every record is handled once, and at least two
handlers overlapped (the concurrency was real). In key-shared mode the server also holds
a subject's next record back until the previous one is settled; in exclusive mode,
which delivers everything in offset order at once, the client alone keeps the order."""

import asyncio
import random

import pulsebus
from pulsebus import DeliveryMode
from support import check, connect, main, within

TOPIC = "py-key-shared"
SUBJECTS = [f"student/{i}" for i in range(4)]
PER_SUBJECT = 15


async def test() -> None:
    await ordered(DeliveryMode.KEY_SHARED, TOPIC)
    await ordered(DeliveryMode.EXCLUSIVE, f"{TOPIC}-exclusive")


async def ordered(mode: DeliveryMode, topic: str) -> None:
    rng = random.Random(7)
    async with connect() as client:
        events = [pulsebus.json_event("step", {"subject": s, "seq": n}, subject=s)
                  for n in range(PER_SUBJECT) for s in SUBJECTS]
        await client.publish(topic, events)
        consumer = client.consumer(topic, "ordered", mode=mode)
        seen: dict[str, list[int]] = {s: [] for s in SUBJECTS}
        busy: set[str] = set()
        overlap = 0
        shutdown = asyncio.Event()

        async def handler(message: pulsebus.Message) -> None:
            nonlocal overlap
            subject = message.subject
            check(subject not in busy, f"{mode.name}: two handlers at once for {subject}")
            busy.add(subject)
            overlap = max(overlap, len(busy))
            await asyncio.sleep(rng.random() * 0.004)  # the work, of uneven length
            seen[subject].append(message.json()["seq"])
            busy.discard(subject)
            if sum(map(len, seen.values())) == len(events):
                shutdown.set()

        await within(consumer.run(handler, concurrency=4, shutdown=shutdown), "every record handled")
        for subject, order in seen.items():
            check(order == list(range(PER_SUBJECT)), f"{mode.name}: {subject} in order once each: {order}")
        check(overlap >= 2, f"{mode.name}: handlers of different subjects overlapped (max {overlap})")
        info = await client.consumer_info(topic, "ordered")
        check(info.committed_offset == len(events), f"all acked: {info}")


main(test)
