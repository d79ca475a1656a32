"""Iterating a consumer and acking moves its committed offset on the server: after
acking 1..5 of 10 and flushing, ListConsumers shows committed 5 and lag 5; an unacked
message is not committed; after acking the rest, committed 10 and lag 0. A message
left unsettled when the consumer closes is given back, not acked."""

import pulsebus
from support import check, connect, main, within

TOPIC = "py-acks"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(10)])
        consumer = client.consumer(TOPIC, "acker")
        seen = []
        async for message in consumer:
            seen.append(message.offset)
            await message.ack()
            if message.offset == 5:
                break
        await consumer.flush()
        info = await client.consumer_info(TOPIC, "acker")
        check(info.committed_offset == 5 and info.lag == 5, f"after acking 1..5: {info}")

        sixth = await within(consumer.next(), "message 6")
        check(sixth.offset == 6, f"then 6, got {sixth.offset}")
        await consumer.flush()
        info = await client.consumer_info(TOPIC, "acker")
        check(info.committed_offset == 5, f"an unacked message is not committed: {info}")
        await sixth.ack()
        async for message in consumer:
            seen.append(message.offset)
            await message.ack()
            if message.offset == 10:
                break
        await consumer.close()
        info = await client.consumer_info(TOPIC, "acker")
        check(info.committed_offset == 10 and info.lag == 0, f"after acking everything: {info}")
        check(seen == [1, 2, 3, 4, 5, 7, 8, 9, 10], f"seen {seen}")

        # One more event, received and left unsettled at close: not committed.
        await client.publish_json(TOPIC, "e", {"n": 10})
        again = client.consumer(TOPIC, "acker")
        held = await within(again.next(), "message 11")
        check(held.offset == 11, f"resumes at 11, got {held.offset}")
        await again.close()
        info = await client.consumer_info(TOPIC, "acker")
        check(info.committed_offset == 10, f"an unsettled message at close is not acked: {info}")


main(test)
