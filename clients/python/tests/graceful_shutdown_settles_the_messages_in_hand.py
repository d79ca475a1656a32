"""Setting run()'s shutdown event stops taking records; the four being handled finish
and their acks are flushed before run() returns, so the committed offset covers them
(4) and the next subscriber starts at 5: nothing that was handled comes again, and
what was received but not started is not acked."""

import asyncio

import pulsebus
from support import check, connect, main, within

TOPIC = "py-shutdown"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("job", {"n": n}) for n in range(20)])
        consumer = client.consumer(TOPIC, "graceful")
        shutdown = asyncio.Event()
        started: list[int] = []
        finished: list[int] = []
        all_started = asyncio.Event()

        async def handler(message: pulsebus.Message) -> None:
            started.append(message.offset)
            if len(started) == 4:
                all_started.set()
                shutdown.set()  # while four are in hand
            await within(all_started.wait(), "four handlers started")
            finished.append(message.offset)

        await within(consumer.run(handler, concurrency=4, shutdown=shutdown), "run() to return")
        check(sorted(started) == [1, 2, 3, 4], f"four started: {started}")
        check(sorted(finished) == [1, 2, 3, 4], f"and all four finished: {finished}")
        info = await client.consumer_info(TOPIC, "graceful")
        check(info.committed_offset == 4, f"their acks were flushed before run() returned: {info}")

        async with client.consumer(TOPIC, "graceful") as again:
            first = await within(again.next(), "the next subscriber's first record")
            check(first.offset == 5, f"the next subscriber starts at 5, got {first.offset}")
            await first.ack()


main(test)
