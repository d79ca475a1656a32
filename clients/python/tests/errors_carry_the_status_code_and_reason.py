"""Failures are PulsebusError exceptions carrying the gRPC status code, the server's
message and the google.rpc details: an event without a type is INVALID_ARGUMENT naming
events[0].type (nothing stored); subscribing to an exclusive consumer in shared mode
ends the iteration with FAILED_PRECONDITION, reason MODE_MISMATCH; seeking past the
head is FAILED_PRECONDITION, reason START_PAST_HEAD."""

import grpc

import pulsebus
from pulsebus import DeliveryMode, PulsebusError
from support import check, connect, main, within

TOPIC = "py-errors"


async def expect_error(awaitable, code, what):
    try:
        await within(awaitable, what)
    except PulsebusError as err:
        check(err.code == code, f"{what}: {code.name} expected, got {err!r}")
        return err
    raise AssertionError(f"{what}: no error")


async def test() -> None:
    async with connect() as client:
        untyped = pulsebus.json_event("", {"n": 1})
        err = await expect_error(client.publish(TOPIC, [untyped]), grpc.StatusCode.INVALID_ARGUMENT,
                                 "an event without a type")
        check(err.field == "events[0].type" and "events[0].type" in err.message, f"names the field: {err!r}")
        check(not err.retryable, "not retryable")

        await client.publish_json(TOPIC, "e", {"n": 1})
        async with client.consumer(TOPIC, "solo") as solo:
            await (await within(solo.next(), "a record")).ack()
        shared = client.consumer(TOPIC, "solo", mode=DeliveryMode.SHARED)
        err = await expect_error(shared.next(), grpc.StatusCode.FAILED_PRECONDITION, "a mode mismatch")
        check(err.reason == "MODE_MISMATCH", f"reason MODE_MISMATCH: {err!r}")
        await shared.close()

        err = await expect_error(client.seek(TOPIC, "solo", 99), grpc.StatusCode.FAILED_PRECONDITION,
                                 "a seek past the head")
        check(err.reason == "START_PAST_HEAD", f"reason START_PAST_HEAD: {err!r}")
        check(str(err).startswith("FAILED_PRECONDITION: "), f"the message says the code: {err}")


main(test)
