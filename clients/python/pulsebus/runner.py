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
from pulsebus.message import Message as _Message

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
    def __init__(self, consumer: Consumer, handler: Handler, concurrency: int, shutdown: asyncio.Event,
                 drain: bool, max_extension: float, extend_every: float | None) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.consumer = consumer
        self.handler = handler
        self.shutdown = shutdown
        self.drain = drain
        self.max_extension = max_extension
        deadline = consumer.config.ack_deadline.ToTimedelta().total_seconds() or 30.0
        self.extend_every = extend_every or max(0.5, deadline / 3)
        self.slots = asyncio.Semaphore(concurrency)
        self.chains: dict[str, deque[Message]] = {}  # subject -> messages waiting behind it
        self.handling: dict[int, float] = {}  # offset -> when its handler started
        self.workers: set[asyncio.Task[None]] = set()
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

    async def work(self, message: Message, key: str | None) -> None:
        try:
            while True:
                await self.handle(message)
                chain = self.chains.get(key) if key is not None else None
                if not chain:
                    break
                if self.shutdown.is_set():
                    self.leftovers.extend(chain)
                    break
                message = chain.popleft()
        finally:
            if key is not None:
                self.chains.pop(key, None)
            self.slots.release()

    async def extend(self) -> None:
        """Extends the deadlines of the messages being handled (shared modes)."""
        while True:
            await asyncio.sleep(self.extend_every)
            cutoff = time.monotonic() - self.max_extension
            offsets = [o for o, started in self.handling.items() if started > cutoff]
            if offsets:
                try:
                    await self.consumer._extend(offsets)
                except PulsebusError as err:
                    log.warning("pulsebus: extending deadlines failed: %s", err)

    async def until_shutdown(self, work: Awaitable[Any]) -> tuple[bool, Any]:
        """(True, result) when `work` finished first, (False, None) on shutdown."""
        task = asyncio.ensure_future(work)
        stop = asyncio.ensure_future(self.shutdown.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if task.done():
            return True, task.result()
        task.cancel()
        await asyncio.wait({task})
        if not task.cancelled() and task.exception() is None and isinstance(task.result(), _Message):
            self.leftovers.append(task.result())  # it arrived as we cancelled
        return False, None

    async def dispatch(self) -> None:
        consumer = self.consumer
        while not self.shutdown.is_set():
            try:
                got, message = await self.until_shutdown(consumer.next())
            except StopAsyncIteration:
                return
            if not got:
                return
            if self.shutdown.is_set():  # both happened: shutdown wins
                self.leftovers.append(message)
                return
            key = message.subject or None
            if key is not None and key in self.chains:
                self.chains[key].append(message)  # behind the earlier one of its subject
                continue
            got, _ = await self.until_shutdown(self.slots.acquire())
            if not got or self.shutdown.is_set():
                if got:
                    self.slots.release()
                self.leftovers.append(message)
                return
            if key is not None:
                self.chains[key] = deque()
            task = asyncio.create_task(self.work(message, key))
            self.workers.add(task)
            task.add_done_callback(self.workers.discard)


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
    runner = _Runner(consumer, handler, concurrency, shutdown or asyncio.Event(), drain,
                     max_extension, extend_every)
    consumer.open()
    extender = None if consumer.exclusive else asyncio.create_task(runner.extend())
    try:
        await runner.dispatch()
    finally:
        consumer.stop_receiving()
        if not runner.drain:
            for task in list(runner.workers):
                task.cancel()
        await asyncio.gather(*list(runner.workers), return_exceptions=True)
        if extender is not None:
            extender.cancel()
        for chain in runner.chains.values():
            runner.leftovers.extend(chain)
        runner.chains.clear()
        # received but never started: given back (shared modes) at close
        for message in runner.leftovers:
            consumer._in_hand.setdefault(message.offset, message._serial)
            message._settled = True
        await consumer.close()
