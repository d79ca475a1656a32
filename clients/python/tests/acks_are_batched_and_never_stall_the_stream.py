"""Acks are coalesced into few AckRequests, and flushed early enough that the server
never stops at max_in_flight: with a 60 s ack linger and max_in_flight 10, iterating
and acking 100 records one by one completes, in at most ~20 Ack calls (a flush each
time half of max_in_flight is waiting), and ends with committed offset 100."""

import pulsebus
from support import check, connect, main, within

TOPIC = "py-ack-batches"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(100)])
        acks = 0
        call = client.call

        async def counting(method, request, **kw):
            nonlocal acks
            acks += method == "Ack"
            return await call(method, request, **kw)

        client.call = counting  # type: ignore[method-assign]
        consumer = client.consumer(TOPIC, "batched", max_in_flight=10, ack_linger=60.0)
        offsets = []
        while len(offsets) < 100:
            message = await within(consumer.next(), f"record {len(offsets) + 1} (no stall at max_in_flight)")
            offsets.append(message.offset)
            await message.ack()
        await consumer.close()
        check(offsets == list(range(1, 101)), f"every record in order: {offsets}")
        check(acks <= 22, f"coalesced into few Ack calls: {acks}")
        info = await client.consumer_info(TOPIC, "batched")
        check(info.committed_offset == 100, f"all acked: {info}")


main(test)
