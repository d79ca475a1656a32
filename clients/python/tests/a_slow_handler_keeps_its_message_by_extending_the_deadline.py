"""While run()'s handler works on a shared-mode message longer than the consumer's ack
deadline (1 s here; the handler takes 2.5 s), the client extends the deadline, so the
server never takes the record back for redelivery: it is handled once, with
delivery_attempt 1, and ListConsumers counts no redelivery (without the extensions it
counts at least one)."""

import asyncio

import pulsebus
from pulsebus import ConsumerState, DeliveryMode
from support import check, connect, main, within

TOPIC = "py-extend"


async def test() -> None:
    async with connect() as client:
        options = dict(mode=DeliveryMode.SHARED, ack_deadline=1.0, min_backoff=0.0)
        slow = client.consumer(TOPIC, "extender", **options)
        shutdown = asyncio.Event()
        attempts: list[int] = []

        async def handler(message: pulsebus.Message) -> None:
            attempts.append(message.delivery_attempt)
            await asyncio.sleep(2.5)  # the slow work itself, not a wait for something
            shutdown.set()

        running = asyncio.create_task(slow.run(handler, shutdown=shutdown, extend_every=0.3))
        await within(slow.wait_for_state(ConsumerState.ATTACHED), "the slow subscriber")
        await client.publish_json(TOPIC, "job", {"n": 1})
        await within(running, "the slow handler")
        info = await client.consumer_info(TOPIC, "extender")
        check(attempts == [1], f"handled once, first attempt: {attempts}")
        check(info.redelivered == 0 and info.committed_offset == 1, f"no redelivery, acked: {info}")


main(test)
