"""A second subscriber of an exclusive consumer is told it waits: its state becomes
STANDBY (and its on_state callback hears it) while the first holds the consumer, and
when the first closes it takes over (ATTACHED) and continues after the committed
offset."""

import pulsebus
from pulsebus import ConsumerState
from support import check, connect, main, within

TOPIC = "py-standby"


async def test() -> None:
    async with connect() as client:
        await client.publish(TOPIC, [pulsebus.json_event("e", {"n": n}) for n in range(4)])
        holder = client.consumer(TOPIC, "single")
        first = await within(holder.next(), "the holder's first record")
        await first.ack()
        await holder.flush()

        states: list[ConsumerState] = []
        waiter = client.consumer(TOPIC, "single", on_state=states.append).open()
        await within(waiter.wait_for_state(ConsumerState.STANDBY), "the second to report standby")
        check(ConsumerState.STANDBY in states, f"on_state heard it: {states}")
        check(ConsumerState.ATTACHED not in states, f"not attached while the first holds it: {states}")

        await holder.close()
        await within(waiter.wait_for_state(ConsumerState.ATTACHED), "the takeover")
        message = await within(waiter.next(), "the first record after the takeover")
        check(message.offset == 2, f"continues after committed offset 1, got {message.offset}")
        await message.ack()
        await waiter.close()
        check(states[-2:] == [ConsumerState.ATTACHED, ConsumerState.CLOSED], f"states {states}")


main(test)
