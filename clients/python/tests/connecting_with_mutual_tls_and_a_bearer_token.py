"""connect() with TLS options and a token: against a server that requires client
certificates signed by its CA and bearer tokens, a client with ca/cert/key and an admin
token publishes and consumes (over https://localhost, the name in the server's
certificate); without a token a call is UNAUTHENTICATED; with a read-only token a
publish is PERMISSION_DENIED but consuming works; without a client certificate there
is no connection (UNAVAILABLE once the retries give up).

Usage: connecting_with_mutual_tls_and_a_bearer_token.py <dir with ca.pem, client.pem, client.key>
"""

import sys
from pathlib import Path

import grpc

import pulsebus
from support import URL, check, main, within

TOPIC = "secure"


async def expect_code(awaitable, code, what):
    try:
        await within(awaitable, what)
    except pulsebus.PulsebusError as err:
        check(err.code == code, f"{what}: {code.name} expected, got {err!r}")
        return
    raise AssertionError(f"{what}: no error")


async def test() -> None:
    pki = Path(sys.argv[1])
    port = URL.rsplit(":", 1)[1]
    url = f"https://localhost:{port}"
    tls = dict(ca=pki / "ca.pem", cert=pki / "client.pem", key=pki / "client.key")

    async with pulsebus.connect(url, token="py-admin-token", **tls) as admin:
        (result,) = await admin.publish(TOPIC, [pulsebus.json_event("e", {"n": 1})])
        check(result.offset == 1, f"published over mutual TLS: {result}")

    async with pulsebus.connect(url, **tls) as anonymous:
        await expect_code(anonymous.read(TOPIC), grpc.StatusCode.UNAUTHENTICATED, "a call without a token")

    async with pulsebus.connect(url, token="py-reader-token", **tls) as reader:
        await expect_code(reader.publish_json(TOPIC, "e", {"n": 2}), grpc.StatusCode.PERMISSION_DENIED,
                          "a publish with a read-only token")
        async with reader.consumer(TOPIC, "secure-reader") as consumer:
            message = await within(consumer.next(), "a record over TLS")
            check(message.json() == {"n": 1}, f"the record: {message.json()}")
            await message.ack()

    async with pulsebus.connect(url, token="py-admin-token", ca=pki / "ca.pem", retry_for=1.0) as no_cert:
        await expect_code(no_cert.read(TOPIC), grpc.StatusCode.UNAVAILABLE, "a call without a client certificate")


main(test)
