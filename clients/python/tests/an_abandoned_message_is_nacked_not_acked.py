"""A message dropped without being settled is nacked, never acked: in shared mode it
comes again with delivery_attempt 2, and the committed offset does not move past it
until that second delivery is acked."""

import gc

import pulsebus
from pulsebus import DeliveryMode
from support import check, connect, main, within

TOPIC = "py-abandoned"


async def test() -> None:
    async with connect() as client:
        await client.publish_json(TOPIC, "e", {"n": 1})
        consumer = client.consumer(TOPIC, "forgetful", mode=DeliveryMode.SHARED, min_backoff=0.1)
        message = await within(consumer.next(), "the first delivery")
        check(message.delivery_attempt == 1, f"first attempt: {message}")
        del message
        gc.collect()
        again = await within(consumer.next(), "the redelivery of the dropped message")
        check(again.offset == 1 and again.delivery_attempt == 2, f"the same record, attempt 2: {again}")
        await consumer.flush()
        info = await client.consumer_info(TOPIC, "forgetful")
        check(info.committed_offset == 0, f"not acked by dropping it: {info}")
        await again.ack()
        await consumer.close()
        info = await client.consumer_info(TOPIC, "forgetful")
        check(info.committed_offset == 1 and info.redelivered >= 1, f"acked the second time: {info}")


main(test)
