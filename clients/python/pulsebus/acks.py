"""Coalesced acks. Settled offsets wait up to `linger` seconds (or until `flush_at`
are waiting, which is kept under max_in_flight so the server never stalls on acks we
hold) and go out as one AckRequest.

Exclusive consumers ack cumulatively: the acker keeps the low-water mark (every offset
up to it settled) and sends it as AckRequest.offset, so out-of-order settling (run with
concurrency > 1) and acks of records delivered on an earlier stream are both covered.
Shared consumers ack the offsets individually (AckRequest.offsets)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pulsebus._proto import pb
from pulsebus.errors import PulsebusError

if TYPE_CHECKING:
    from pulsebus.client import Client

log = logging.getLogger("pulsebus")

# Most offsets in one AckRequest (the server takes up to 10000).
MAX_OFFSETS_PER_ACK = 5000


class Acker:
    def __init__(
        self, client: Client, topic: str, consumer: str, *, cumulative: bool, linger: float, flush_at: int
    ) -> None:
        self.client = client
        self.topic = topic
        self.consumer = consumer
        self.cumulative = cumulative
        self.linger = linger
        self.flush_at = max(1, flush_at)
        self.epoch: int | None = None
        # exclusive: the low-water mark, what the server has, and settled offsets above it
        self.low_water = 0
        self.sent_low_water = 0
        self._above: set[int] = set()
        # shared: offsets waiting to be sent
        self._pending: list[int] = []
        self._lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self.committed = 0
        self.failures = 0

    # What the stream says

    def attached(self, committed: int, epoch: int) -> None:
        self.epoch = epoch
        self.committed = max(self.committed, committed)
        if committed > self.low_water:
            self.low_water = committed
            self.sent_low_water = max(self.sent_low_water, committed)
            self._above = {o for o in self._above if o > committed}
            self._advance()
        elif committed < self.low_water:
            # acks the server lost or never got (they failed): send them again
            self.sent_low_water = min(self.sent_low_water, committed)
            self._kick(urgent=True)

    def repositioned(self, committed: int, epoch: int) -> None:
        """A Seek or an exclusive nack's rewind: what we settled after `committed` is
        forgotten (it comes again)."""
        self.epoch = epoch
        self.low_water = self.sent_low_water = self.committed = committed
        self._above.clear()

    # Settling

    def settle(self, offset: int, epoch: int) -> None:
        if self.cumulative:
            if self.epoch is not None and epoch < self.epoch:
                return  # delivered before a Seek: the server would ignore it anyway
            if offset <= self.low_water:
                return
            self._above.add(offset)
            self._advance()
            waiting = self.low_water - self.sent_low_water
        else:
            self._pending.append(offset)
            waiting = len(self._pending)
        if waiting:
            self._kick(urgent=waiting >= self.flush_at)

    def _advance(self) -> None:
        while self.low_water + 1 in self._above:
            self.low_water += 1
            self._above.discard(self.low_water)

    def _kick(self, *, urgent: bool) -> None:
        self._dirty.set()
        if urgent:
            self._urgent.set()
        if self._task is None and not self._stopped:
            self._task = asyncio.create_task(self._loop(), name=f"pulsebus-acks-{self.consumer}")

    async def _loop(self) -> None:
        while not self._stopped:
            await self._dirty.wait()
            try:
                async with asyncio.timeout(self.linger):
                    await self._urgent.wait()
            except TimeoutError:
                pass
            self._dirty.clear()
            self._urgent.clear()
            await self.flush()

    async def flush(self) -> None:
        """Sends every settled offset and returns when the server has them (or the
        retries gave up: the records then come again, at least once)."""
        async with self._lock:
            while True:
                request = self._next_request()
                if request is None:
                    return
                sent_to = request.offset
                try:
                    response = await self.client.call("Ack", request)
                except PulsebusError as err:
                    self.failures += 1
                    log.warning("pulsebus: ack of %s/%s failed: %s; those records will come again",
                                self.topic, self.consumer, err)
                    # Given up: shared records are redelivered; an exclusive consumer's
                    # next cumulative ack covers these offsets again.
                    self.sent_low_water = max(self.sent_low_water, sent_to)
                    continue
                self.committed = max(self.committed, response.committed_offset)
                if self.cumulative:
                    self.sent_low_water = max(self.sent_low_water, sent_to)

    def _next_request(self) -> pb.AckRequest | None:
        if self.cumulative:
            if self.low_water <= self.sent_low_water:
                return None
            request = pb.AckRequest(topic=self.topic, consumer=self.consumer, offset=self.low_water)
            if self.epoch is not None:
                request.seek_epoch = self.epoch
            return request
        if not self._pending:
            return None
        batch, self._pending = self._pending[:MAX_OFFSETS_PER_ACK], self._pending[MAX_OFFSETS_PER_ACK:]
        return pb.AckRequest(topic=self.topic, consumer=self.consumer, offsets=batch)

    async def close(self) -> None:
        """Sends what is settled and stops the background sender."""
        self._stopped = True
        self._kick(urgent=True)
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
