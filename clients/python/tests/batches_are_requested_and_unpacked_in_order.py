"""Consumers ask for batches by default and hand records out one at a time: 300 events
stored before the consumer starts come as offsets 1..300 in order, each once, and the
stream carried them in fewer messages than records (at least one batch held more than
one). With batch_records=0 the same 300 come one record per message, no batch."""

import pulsebus
from pulsebus.consumer import DEFAULT_BATCH_RECORDS
from support import check, connect, main, within

TOPIC = "py-batches"
TOTAL = 300


async def consume_all(client: pulsebus.Client, name: str, **options: object) -> pulsebus.Consumer:
    consumer = client.consumer(TOPIC, name, **options)
    seen = []
    while len(seen) < TOTAL:
        message = await within(consumer.next(), f"message {len(seen) + 1} of {name}")
        seen.append(message.offset)
        await message.ack()
    check(seen == list(range(1, TOTAL + 1)), f"{name}: out of order or repeated: {seen}")
    await consumer.close()
    return consumer


async def test() -> None:
    async with connect() as client:
        for call in range(3):
            await client.publish(TOPIC, [pulsebus.json_event("e", {"n": call * 100 + n}) for n in range(100)])

        batched = await consume_all(client, "batched")
        check(batched.batch_records == DEFAULT_BATCH_RECORDS > 1, f"default {batched.batch_records}")
        check(batched._request().batch_records == DEFAULT_BATCH_RECORDS, "the request asks for batches")
        stats = batched.stats
        check(stats.delivered == TOTAL, f"delivered {stats.delivered}")
        check(0 < stats.batches < TOTAL, f"{stats.batches} batches for {TOTAL} records")

        plain = await consume_all(client, "plain", batch_records=0)
        check(plain.stats.batches == 0, f"batches without asking: {plain.stats.batches}")
        info = await client.consumer_info(TOPIC, "plain")
        check(info is not None and info.committed_offset == TOTAL, f"plain committed: {info}")


main(test)
