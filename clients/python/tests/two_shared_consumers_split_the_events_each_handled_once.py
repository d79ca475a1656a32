"""Two subscribers of one shared consumer split the records: each of 40 events is
handled once, by one of them, and both handle some. (The first holds its records
unacked until the second has one, so the server must hand the second some.)"""

import asyncio

import pulsebus
from pulsebus import ConsumerState, DeliveryMode
from support import check, connect, main, within

TOPIC = "py-shared"
COUNT = 40


async def test() -> None:
    async with connect() as client:
        first = client.consumer(TOPIC, "workers", mode=DeliveryMode.SHARED, max_in_flight=4).open()
        second = client.consumer(TOPIC, "workers", mode=DeliveryMode.SHARED, max_in_flight=4).open()
        await within(first.wait_for_state(ConsumerState.ATTACHED), "the first attached")
        await within(second.wait_for_state(ConsumerState.ATTACHED), "the second attached")
        await client.publish(TOPIC, [pulsebus.json_event("job", {"n": n}) for n in range(COUNT)])

        handled: dict[str, list[int]] = {"first": [], "second": []}
        second_has_one = asyncio.Event()
        done = asyncio.Event()

        async def work(name: str, consumer: pulsebus.Consumer) -> None:
            while not done.is_set():
                try:
                    message = await consumer.next(timeout=0.5)
                except TimeoutError:
                    continue
                if name == "first":
                    await within(second_has_one.wait(), "the second subscriber's first record")
                else:
                    second_has_one.set()
                handled[name].append(message.offset)
                await message.ack()
                if sum(map(len, handled.values())) >= COUNT:
                    done.set()

        await within(asyncio.gather(work("first", first), work("second", second)), "all 40 handled")
        await first.close()
        await second.close()

    every = sorted(handled["first"] + handled["second"])
    check(every == list(range(1, COUNT + 1)), f"each event handled once: {handled}")
    check(handled["first"] and handled["second"], f"both handled some: {handled}")


main(test)
