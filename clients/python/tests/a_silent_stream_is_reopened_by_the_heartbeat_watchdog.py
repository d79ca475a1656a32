"""The heartbeat watchdog: the server heartbeats idle streams (every 100 ms here), so
when the consumer's link goes silent (a proxy stops passing the server's bytes but
keeps the sockets open, which TCP alone would not notice for minutes) the consumer
gives up on it after heartbeat_timeout, opens a new connection and a new stream, and
gets the record published meanwhile (sent to the silent stream, and given to the new
one when the server sees the old connection closed)."""

import pulsebus
from pulsebus import ConsumerState, DeliveryMode
from support import URL, FreezableProxy, check, main, within

TOPIC = "py-watchdog"


async def test() -> None:
    proxy = FreezableProxy(URL)
    proxied = await proxy.start()
    async with pulsebus.connect(URL) as direct, pulsebus.connect(proxied) as client:
        consumer = client.consumer(TOPIC, "watched", mode=DeliveryMode.SHARED, ack_deadline=60.0,
                                   heartbeat_timeout=1.0).open()
        await within(consumer.wait_for_state(ConsumerState.ATTACHED), "attached through the proxy")
        await direct.publish_json(TOPIC, "e", {"n": 1})
        first = await within(consumer.next(), "the first record")
        await first.ack()
        await consumer.flush()

        proxy.freeze()
        await direct.publish_json(TOPIC, "e", {"n": 2})
        second = await within(consumer.next(), "the record published while the link was silent")
        check(second.offset == 2, f"offset 2, got {second.offset}")
        await second.ack()
        await consumer.close()
        check(consumer.stats.watchdog_timeouts >= 1, f"the watchdog fired: {consumer.stats}")
        check(proxy.connections >= 2, f"a new connection was opened: {proxy.connections}")
        info = await direct.consumer_info(TOPIC, "watched")
        check(info.committed_offset == 2, f"both acked: {info}")
    await proxy.close()


main(test)
