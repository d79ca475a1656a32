"""consumer.run(handler): a handler that returns acks; one that returns Retry() gets
the record again with delivery_attempt 2; one that raises Fail(reason) sends it to
`<topic>.dlq` with the reason. ListConsumers counts the redelivery and the dead letter,
and everything ends settled."""

import asyncio

import pulsebus
from pulsebus import DeliveryMode, Fail, Retry
from support import check, connect, main, within

TOPIC = "py-outcomes"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("job", {"do": what})
                                     for what in ("ok", "retry", "fail")])
        consumer = client.consumer(TOPIC, "outcomes", mode=DeliveryMode.SHARED,
                                   min_backoff=0.1, max_backoff=1.0)
        attempts: dict[str, list[int]] = {"ok": [], "retry": [], "fail": []}
        shutdown = asyncio.Event()

        async def handler(message: pulsebus.Message):
            what = message.json()["do"]
            attempts[what].append(message.delivery_attempt)
            if len(attempts["retry"]) == 2 and attempts["ok"] and attempts["fail"]:
                shutdown.set()
            if what == "retry" and message.delivery_attempt == 1:
                return Retry(delay=0.1)
            if what == "fail":
                raise Fail("cannot do 'fail'")
            return None

        await within(consumer.run(handler, concurrency=2, shutdown=shutdown), "the three outcomes")
        check(attempts == {"ok": [1], "retry": [1, 2], "fail": [1]}, f"attempts {attempts}")

        dlq = await client.read(f"{TOPIC}.dlq")
        check(len(dlq.records) == 1, f"one dead letter: {list(dlq.records)}")
        letter = dlq.records[0].event
        check(letter.attributes.get("pulsebus.dead_letter.reason") == "cannot do 'fail'",
              f"the reason travels with it: {dict(letter.attributes)}")
        check(pulsebus.json_event("x", {"do": "fail"}).text_data == letter.text_data,
              f"the dead letter carries the payload: {letter.text_data}")
        info = await client.consumer_info(TOPIC, "outcomes")
        check(info.committed_offset == 3 and info.in_flight == 0, f"all settled: {info}")
        check(info.redelivered >= 1 and info.dead_lettered == 1, f"counted: {info}")


main(test)
