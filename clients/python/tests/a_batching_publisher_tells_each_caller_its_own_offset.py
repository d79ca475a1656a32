"""The batching publisher: 100 concurrent publish() calls within the linger go out in a
few Publish requests of at most max_batch events, and every caller is told its own
event's offset (the offsets 1..100 once each, matching the ids in the log)."""

import asyncio

import pulsebus
from support import check, connect, main, within

TOPIC = "py-batching"
COUNT = 100


async def test() -> None:
    async with connect() as client:
        requests = 0
        publish = client.publish

        async def counting(topic, events):
            nonlocal requests
            requests += 1
            return await publish(topic, events)

        client.publish = counting  # type: ignore[method-assign]
        async with client.publisher(TOPIC, linger=0.05, max_batch=30) as publisher:
            events = [pulsebus.json_event("e", {"n": n}) for n in range(COUNT)]
            results = await within(asyncio.gather(*(publisher.publish(e) for e in events)), "publishes")
        check(sorted(r.offset for r in results) == list(range(1, COUNT + 1)), "offsets 1..100 once each")
        check(all(r.id == e.id for r, e in zip(results, events)), "each caller got its own event's result")
        check(4 <= requests <= 10, f"batched into few requests of at most 30: {requests}")

        stored = {r.offset: r.event.id for r in (await client.read(TOPIC, limit=1000)).records}
        check(all(stored[r.offset] == e.id for r, e in zip(results, events)), "the log agrees")


main(test)
