"""What every test program shares: the server's URL, asking the Rust test that drives
us for a restart / stop / start / replica (tests/api/e2e/driven.rs), checks, and main().

Each test program is run by a `#[tokio::test]` in tests/api/python_client.rs against a
fresh server with PULSEBUS_URL set; it exits 0 when every check passed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Awaitable, Callable

import pulsebus

URL = os.environ.get("PULSEBUS_URL", "http://127.0.0.1:50051")
# Upper bound of any single wait, so that a hung test fails instead of hanging.
WAIT = 30.0


class CheckFailed(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


async def ask(request: str) -> str:
    """Asks the driving test for `restart`, `stop`, `start` or `replica`; returns what
    follows `ok` in its answer (a URL for replica)."""
    print(f"pulsebus-test: {request}", flush=True)
    line = await asyncio.wait_for(asyncio.to_thread(sys.stdin.readline), 60)
    check(line.startswith("ok"), f"{request}: the driver answered {line!r}")
    return line[2:].strip()


async def within(awaitable: Awaitable[object], what: str, timeout: float = WAIT) -> object:
    try:
        async with asyncio.timeout(timeout):
            return await awaitable
    except TimeoutError:
        raise CheckFailed(f"timed out after {timeout}s waiting for {what}") from None


def connect(**options: object) -> pulsebus.Client:
    return pulsebus.connect(URL, **options)


def main(test: Callable[[], Awaitable[None]]) -> None:
    """Runs the test, prints `ok` or the failure, and exits 0 or 1."""
    logging.basicConfig(level=os.environ.get("PULSEBUS_TEST_LOG", "INFO"), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(asyncio.wait_for(test(), 120))
    except BaseException:
        traceback.print_exc()
        print("FAILED", flush=True)
        sys.exit(1)
    print("ok", flush=True)


class FreezableProxy:
    """A TCP proxy to the server whose open connections can be frozen: the server's
    bytes stop reaching the client while the sockets stay open, as on a link or proxy
    that silently stopped delivering. What the client sends still reaches the server
    (so the server sees the client close a connection). Connections made after
    freeze() flow normally."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit("//", 1)[-1].rsplit(":", 1)
        self.target = (host, int(port))
        self.to_client: list[asyncio.Event] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def freeze(self) -> None:
        for flowing in self.to_client:
            flowing.clear()

    async def _serve(self, client_reader, client_writer) -> None:
        self.connections += 1
        to_server = asyncio.Event()
        to_server.set()
        to_client = asyncio.Event()
        to_client.set()
        self.to_client.append(to_client)
        server_reader, server_writer = await asyncio.open_connection(*self.target)

        async def pipe(reader, writer, flowing) -> None:
            try:
                while data := await reader.read(65536):
                    await flowing.wait()
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                if flowing.is_set():
                    writer.close()

        try:
            await asyncio.gather(pipe(client_reader, server_writer, to_server),
                                 pipe(server_reader, client_writer, to_client))
        except asyncio.CancelledError:
            pass

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
