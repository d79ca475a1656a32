"""Batching publisher: many concurrent single-event publishes, few Publish calls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pulsebus._proto import pb
from pulsebus.errors import ClosedError
from pulsebus.ids import new_id

if TYPE_CHECKING:
    from pulsebus.client import Client


class Publisher:
    """Collects events for `linger` seconds (or until `max_batch` are waiting) and sends
    them as one Publish; every `publish` call gets its own event's result. One batch is
    in flight at a time, so batches commit in the order they were formed. A failed batch
    fails each of its callers with the same PulsebusError (after the client's retries,
    which are safe: every event has its id before the first attempt)."""

    def __init__(self, client: Client, topic: str, *, linger: float = 0.005, max_batch: int = 500) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.client = client
        self.topic = topic
        self.linger = linger
        self.max_batch = max_batch
        self._pending: list[tuple[pb.Event, asyncio.Future[pb.PublishResult]]] = []
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def publish(self, event: pb.Event) -> pb.PublishResult:
        """Queues the event for the next batch and returns its result once stored."""
        if self._closed:
            raise ClosedError("publisher is closed")
        if not event.id:
            event.id = new_id()
        future: asyncio.Future[pb.PublishResult] = asyncio.get_running_loop().create_future()
        self._pending.append((event, future))
        self._wake.set()
        if len(self._pending) >= self.max_batch:
            self._full.set()
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name=f"pulsebus-publisher-{self.topic}")
        return await future

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < self.max_batch and not self._closed:
                try:
                    async with asyncio.timeout(self.linger):
                        await self._full.wait()
                except TimeoutError:
                    pass
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            if len(self._pending) < self.max_batch:
                self._full.clear()
            if not self._pending:
                self._wake.clear()
            if batch:
                await self._send(batch)
            if self._closed and not self._pending:
                return

    async def _send(self, batch: list[tuple[pb.Event, asyncio.Future[pb.PublishResult]]]) -> None:
        try:
            results = await self.client.publish(self.topic, [event for event, _ in batch])
        except Exception as err:  # every caller of the batch learns why
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def close(self) -> None:
        """Sends what is queued and stops."""
        self._closed = True
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task

    async def __aenter__(self) -> Publisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
