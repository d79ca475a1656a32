"""An exclusive consumer survives a server restart: it reconnects by itself with
back-off, resumes from the server-side committed offset, drops the records it already
had that the new stream sends again, and hands out every offset exactly once, in order:
nothing lost, nothing skipped. Its acks are held back (a long ack linger), so the
server's committed offset is still 0 at the restart and the new stream starts over at
1: the client drops 1..10 (handled) and 11..20 (in hand) instead of handing them out
again."""

import pulsebus
from support import ask, check, connect, main, within

TOPIC = "py-restart"


async def test() -> None:
    async with connect(retry_for=60.0) as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(1, 21)])
        consumer = client.consumer(TOPIC, "resumer", heartbeat_timeout=10.0, ack_linger=60.0)
        handled: list[int] = []
        while len(handled) < 10:
            message = await within(consumer.next(), f"message {len(handled) + 1}")
            handled.append(message.offset)
            await message.ack()
        info = await client.consumer_info(TOPIC, "resumer")
        check(info.committed_offset == 0, f"the acks are still held back: {info}")
        # 1..10 handled and acked (not sent yet), 11..20 delivered and in the consumer's
        # inbox; now the server goes away and comes back while the consumer is open.
        await ask("restart")
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(21, 31)])
        while len(handled) < 30:
            message = await within(consumer.next(), f"message {len(handled) + 1}")
            check(message.json()["n"] == message.offset, f"payload of {message.offset}: {message.json()}")
            handled.append(message.offset)
            await message.ack()
        await consumer.close()
        check(handled == list(range(1, 31)), f"every offset once and in order: {handled}")
        check(consumer.stats.reconnects >= 1, f"it reconnected: {consumer.stats}")
        check(consumer.stats.dropped_duplicates >= 10, f"it dropped the records sent again: {consumer.stats}")
        info = await client.consumer_info(TOPIC, "resumer")
        check(info.committed_offset == 30, f"committed 30: {info}")


main(test)
