"""A consumer sends the last record it received whenever it resubscribes: once the log
was cut back under it while the server was down (as an asynchronous PostgreSQL failover
would leave it), the server refuses with FAILED_PRECONDITION, reason LOG_DIVERGED, and
the consumer ends with that error instead of receiving other events at offsets it
already saw."""

import grpc

import pulsebus
from pulsebus import PulsebusError
from support import ask, check, connect, main, within

TOPIC = "py-diverged"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(3)])
        consumer = client.consumer(TOPIC, "audit")
        for expected in (1, 2, 3):
            message = await within(consumer.next(), f"message {expected}")
            check(message.offset == expected, f"offset {message.offset}, {expected} expected")
        await ask("stop")
        await ask(f"rewind {TOPIC} 1")
        await ask("start")
        await client.publish(TOPIC, [pulsebus.json_event("other", {"n": n}) for n in range(2)])
        try:
            message = await within(consumer.next(), "the divergence")
        except PulsebusError as err:
            check(err.code == grpc.StatusCode.FAILED_PRECONDITION, f"code: {err!r}")
            check(err.reason == "LOG_DIVERGED", f"reason LOG_DIVERGED: {err!r}")
            # 2 when it resubscribed before the new events, else 3 (another event there).
            check(err.metadata.get("offset") in ("2", "3"), f"diverged at 2 or 3: {err.metadata}")
        else:
            raise AssertionError(f"handed out offset {message.offset} of a diverged log")
        await consumer.close()


main(test)
