"""run(drain=False): on shutdown the handlers are cancelled and their messages nacked
at once, not acked: a shared consumer's two records held by handlers that never finish
are given back, run() returns, and another subscriber gets both again with
delivery_attempt 2."""

import asyncio

import pulsebus
from pulsebus import DeliveryMode
from support import check, connect, main, within

TOPIC = "py-no-drain"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("job", {"n": n}) for n in range(2)])
        consumer = client.consumer(TOPIC, "impatient", mode=DeliveryMode.SHARED)
        shutdown = asyncio.Event()
        started: list[int] = []
        never = asyncio.Event()

        async def handler(message: pulsebus.Message) -> None:
            started.append(message.offset)
            if len(started) == 2:
                shutdown.set()
            await never.wait()  # stuck: only cancelling it ends it

        await within(consumer.run(handler, concurrency=2, shutdown=shutdown, drain=False), "run() to return")
        check(sorted(started) == [1, 2], f"both were in hand: {started}")

        async with client.consumer(TOPIC, "impatient", mode=DeliveryMode.SHARED) as again:
            got = [await within(again.next(), "a record given back") for _ in range(2)]
            check(sorted(m.offset for m in got) == [1, 2], f"both again: {got}")
            check(all(m.delivery_attempt == 2 for m in got), f"second attempts: {got}")
            for message in got:
                await message.ack()
        info = await client.consumer_info(TOPIC, "impatient")
        check(info.committed_offset == 2, f"acked the second time: {info}")


main(test)
