"""Retry in exclusive mode: the server rewinds the stream to the committed offset after
the delay (Repositioned), so the retried record and everything after it come again in
order; the client forgets what it settled after the rewind point, hands the records
out again instead of dropping them as duplicates, and ends with committed offset 5."""

import asyncio

import pulsebus
from pulsebus import Retry
from support import check, connect, main, within

TOPIC = "py-exclusive-retry"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(1, 6)])
        consumer = client.consumer(TOPIC, "rewinder", min_backoff=0.1)
        seen: list[int] = []
        shutdown = asyncio.Event()

        async def handler(message: pulsebus.Message):
            seen.append(message.offset)
            if message.offset == 2 and seen.count(2) == 1:
                return Retry(delay=0.2)
            if message.offset == 5 and seen.count(2) == 2:
                shutdown.set()
            return None

        await within(consumer.run(handler, shutdown=shutdown), "the retried records")
        again = seen.index(2, seen.index(2) + 1)
        check(seen[:2] == [1, 2] and seen[again:] == [2, 3, 4, 5],
              f"2 and what follows came again, in order: {seen}")
        check(sorted(set(seen)) == [1, 2, 3, 4, 5], f"nothing else: {seen}")
        info = await client.consumer_info(TOPIC, "rewinder")
        check(info.committed_offset == 5, f"committed 5: {info}")


main(test)
