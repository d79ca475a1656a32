"""`consumer.run(handler, concurrency, shutdown)`: the handler loop.

The handler's outcome settles the message: returning normally acks it; returning or
raising `Retry(delay)` nacks it (redelivered after `delay`, or the consumer's back-off);
returning or raising `Fail(reason)` dead-letters it; any other exception is logged and
treated as Retry(). A handler may also settle the message itself.

While a handler runs, a shared-mode message's ack deadline is extended every
`extend_every` seconds, for at most `max_extension` seconds. With concurrency > 1,
messages with the same subject are handled one after the other, in delivery order (so
key-shared consumers keep per-subject order); other messages run side by side.

When `shutdown` is set: no new message starts; the ones being handled finish (or, with
`drain=False`, are cancelled and nacked at once); the acks are flushed; what was
received but not started is nacked; the consumer closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pulsebus.errors import PulsebusError

if TYPE_CHECKING:
    from pulsebus.consumer import Consumer
    from pulsebus.message import Message

log = logging.getLogger("pulsebus")


class Retry(Exception):
    """Outcome: give the message back, redelivered after `delay` seconds (None: the
    consumer's back-off for the attempt)."""

    def __init__(self, delay: float | None = None) -> None:
        super().__init__(f"retry after {delay}s" if delay is not None else "retry")
        self.delay = delay


class Fail(Exception):
    """Outcome: do not retry; send the message to the dead-letter topic with `reason`."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


Handler = Callable[["Message"], Awaitable[Any]]


async def _settle(message: Message, outcome: Any) -> None:
    if message.settled:
        return
    try:
        if isinstance(outcome, Retry):
            await message.nack(outcome.delay)
        elif isinstance(outcome, Fail):
            await message.dead_letter(outcome.reason)
        else:
            await message.ack()
    except PulsebusError as err:
        log.warning("pulsebus: settling %r failed: %s (it will come again)", message, err)


class _Runner:
    """`concurrency` worker tasks pulling from the consumer. A worker that takes a
    message whose subject another worker is handling queues it behind that one (the
    subject's chain) and takes the next; the worker of a subject handles its chain
    before it takes anything new. No task per message, no dispatcher."""

    def __init__(self, consumer: Consumer, handler: Handler, concurrency: int, shutdown: asyncio.Event,
                 user_shutdown: asyncio.Event, drain: bool, max_extension: float,
                 extend_every: float | None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.consumer = consumer
        self.handler = handler
        self.concurrency = concurrency
        self.shutdown = shutdown
        self.user_shutdown = user_shutdown
        self.drain = drain
        self.max_extension = max_extension
        deadline = consumer.config.ack_deadline.ToTimedelta().total_seconds() or 30.0
        self.extend_every = extend_every or max(0.5, deadline / 3)
        self.explicit_extend_every = extend_every
        self.chains: dict[str, deque[Message]] = {}  # subject being handled -> waiting behind it
        self.handling: dict[int, float] = {}  # offset -> when its handler started
        self.leftovers: list[Message] = []

    async def handle(self, message: Message) -> None:
        self.handling[message.offset] = time.monotonic()
        try:
            result = await self.handler(message)
        except (Retry, Fail) as outcome:
            result = outcome
        except asyncio.CancelledError:
            self.handling.pop(message.offset, None)
            if not message.settled:
                await asyncio.shield(message.nack(0.0))
            raise
        except Exception:
            log.exception("pulsebus: handler failed on %r; it will be retried", message)
            result = Retry()
        self.handling.pop(message.offset, None)
        await _settle(message, result)

    async def worker(self) -> None:
        consumer = self.consumer
        while True:
            message = await consumer._next_unless(self.shutdown, self.user_shutdown)
            if message is None:
                return
            key = message.subject or None
            if key is None:
                await self.handle(message)
                continue
            if key in self.chains:
                self.chains[key].append(message)  # behind the earlier one of its subject
                continue
            chain: deque[Message] = deque()
            self.chains[key] = chain
            try:
                while True:
                    await self.handle(message)
                    if not chain:
                        break
                    if self.shutdown.is_set() or self.user_shutdown.is_set():
                        self.leftovers.extend(chain)
                        break
                    message = chain.popleft()
            finally:
                del self.chains[key]

    async def extend(self) -> None:
        """Extends the deadlines of the messages being handled (shared modes)."""
        if self.explicit_extend_every is None and not self.consumer.config.HasField("ack_deadline"):
            # an existing consumer keeps its own deadline: ask for it
            try:
                info = await self.consumer.client.consumer_info(self.consumer.topic, self.consumer.name)
            except PulsebusError:
                info = None
            if info is not None and info.config.HasField("ack_deadline"):
                self.extend_every = max(0.5, info.config.ack_deadline.ToTimedelta().total_seconds() / 3)
        while True:
            await asyncio.sleep(self.extend_every)
            cutoff = time.monotonic() - self.max_extension
            offsets = [o for o, started in self.handling.items() if started > cutoff]
            if offsets:
                try:
                    await self.consumer._extend(offsets)
                except PulsebusError as err:
                    log.warning("pulsebus: extending deadlines failed: %s", err)


async def run(
    consumer: Consumer,
    handler: Handler,
    *,
    concurrency: int = 1,
    shutdown: asyncio.Event | None = None,
    drain: bool = True,
    max_extension: float = 600.0,
    extend_every: float | None = None,
) -> None:
    """Runs `handler` on every message of `consumer` until `shutdown` is set (or the
    stream fails for good: its PulsebusError is raised after the cleanup)."""
    stop = asyncio.Event()  # shutdown, or a worker failed
    shutdown = shutdown or asyncio.Event()
    runner = _Runner(consumer, handler, concurrency, stop, shutdown, drain, max_extension, extend_every)
    consumer.open()

    async def watch() -> None:
        await shutdown.wait()
        stop.set()
        consumer._wake()  # workers waiting for a message see it

    watcher = asyncio.create_task(watch())
    extender = None if consumer.exclusive else asyncio.create_task(runner.extend())
    workers = [asyncio.create_task(runner.worker()) for _ in range(concurrency)]
    failure: BaseException | None = None
    try:
        waiting: set[asyncio.Task[None]] = {*workers, watcher}
        while True:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            failure = next((t.exception() for t in done
                            if t is not watcher and not t.cancelled() and t.exception()), None)
            if failure is not None or not any(t in waiting for t in workers):
                break  # a worker failed, or all of them stopped after the shutdown
            if watcher.done() and not drain:
                break  # shutdown without draining: cancel the handlers below
    finally:
        stop.set()
        consumer._wake()
        consumer.stop_receiving()
        if not runner.drain or failure is not None:
            # Close the stream first: that gives the records in hand back at once,
            # rather than a nack that could hand them straight back to this stream.
            await consumer.detach()
            for task in workers:
                task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        watcher.cancel()
        if extender is not None:
            extender.cancel()
        for chain in runner.chains.values():
            runner.leftovers.extend(chain)
        # received but never started: given back when close() closes the stream
        for message in runner.leftovers:
            message._settled = True
        await consumer.close()
    if failure is not None:
        raise failure
