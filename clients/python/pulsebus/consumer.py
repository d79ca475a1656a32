"""The consuming engine: one Subscribe stream kept open across disconnects, server
restarts and takeovers, feeding an inbox that `async for` and `run()` read.

What it does so its user does not have to:
- reconnects with back-off and jitter when the stream ends with a retryable code (or
  just ends), and resumes from the server-side committed offset;
- a heartbeat watchdog: the server sends Heartbeat on idle streams (every
  --heartbeat-interval, default 5 s), so a stream silent for `heartbeat_timeout` is
  dead and is reopened;
- reports the stream's state (ATTACHED, STANDBY while another subscriber holds an
  exclusive consumer, RECONNECTING) through `state`, `on_state` and the log;
- exclusive mode: drops records redelivered after a reconnect whose offsets it already
  has (records come in offset order there) and counts gaps; shared modes: drops a
  redelivery of a record still in hand (the first copy's ack settles it);
- coalesced acks (see acks.py), and nacks of what is left unsettled on close.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import duration_pb2

from pulsebus._proto import pb
from pulsebus.acks import Acker
from pulsebus.errors import RETRYABLE_STREAM_CODES, ClosedError, PulsebusError
from pulsebus.message import Message

if TYPE_CHECKING:
    from pulsebus.client import Client
    from pulsebus.runner import Handler

log = logging.getLogger("pulsebus")


# Records per message a consumer asks for unless told otherwise: the server never waits
# to fill a batch, so this costs nothing live and saves per-message work when behind.
DEFAULT_BATCH_RECORDS = 256


class DeliveryMode(enum.IntEnum):
    EXCLUSIVE = pb.DELIVERY_MODE_EXCLUSIVE
    SHARED = pb.DELIVERY_MODE_SHARED
    KEY_SHARED = pb.DELIVERY_MODE_KEY_SHARED


class ConsumerState(enum.Enum):
    IDLE = "idle"  # not started
    CONNECTING = "connecting"  # the first Subscribe is on its way
    ATTACHED = "attached"  # this stream holds the consumer: records flow
    STANDBY = "standby"  # another subscriber holds the (exclusive) consumer; we wait
    RECONNECTING = "reconnecting"  # the stream broke; backing off before reopening
    CLOSED = "closed"


@dataclass
class ConsumerStats:
    """Counters of what the engine did, for logs and tests."""

    delivered: int = 0
    batches: int = 0  # SubscribeResponse.batch messages received
    dropped_duplicates: int = 0
    gaps: int = 0
    reconnects: int = 0
    heartbeats: int = 0
    watchdog_timeouts: int = 0


class _Watchdog:
    """Cancels a Subscribe call that received nothing (not even a heartbeat) for
    `timeout` seconds. The reader stamps `last_activity`; a timer checks it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, call: Any) -> None:
        self.loop = loop
        self.timeout = timeout
        self.call = call
        self.fired = False
        self.last_activity = loop.time()
        self._handle = loop.call_later(timeout, self._check)

    def _check(self) -> None:
        idle = self.loop.time() - self.last_activity
        if idle >= self.timeout:
            self.fired = True
            self.call.cancel()
        else:
            self._handle = self.loop.call_later(self.timeout - idle, self._check)

    def stop(self) -> None:
        self._handle.cancel()


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


class Consumer:
    """A durable consumer of `topic` named `name`.

    Args:
        mode: EXCLUSIVE (one subscriber at a time, in offset order; the default),
            SHARED or KEY_SHARED (subscribers split the records).
        start: where a new consumer starts: "earliest" (default), "latest", an
            offset, or a datetime. Ignored once the consumer has a committed offset.
        types: only these event types (exclusive mode only).
        max_in_flight: most unacked records the server sends (0: the server's 1000).
        batch_records: most records the server may send in one message (0: one
            record per message). Records are still handed out one at a time, in
            order; batches only save per-message costs while the consumer is behind.
        config: the ConsumerConfig for a new consumer (mode is set from `mode`);
            ack_deadline, max_deliveries, min_backoff, max_backoff, dead_letter_topic
            are shortcuts for its fields (seconds for durations).
        heartbeat_timeout: a stream silent this long (seconds) is reopened. Keep it
            above the server's --heartbeat-interval (default 5 s).
        ack_linger: how long settled offsets wait to be sent together (seconds).
        on_state: called with the new ConsumerState on every change.
    """

    def __init__(
        self,
        client: Client,
        topic: str,
        name: str,
        *,
        mode: DeliveryMode = DeliveryMode.EXCLUSIVE,
        start: int | str | dt.datetime | None = None,
        types: Iterable[str] = (),
        max_in_flight: int = 1000,
        batch_records: int = DEFAULT_BATCH_RECORDS,
        config: pb.ConsumerConfig | None = None,
        ack_deadline: float | None = None,
        max_deliveries: int | None = None,
        min_backoff: float | None = None,
        max_backoff: float | None = None,
        dead_letter_topic: str | None = None,
        heartbeat_timeout: float = 15.0,
        ack_linger: float = 0.01,
        on_state: Callable[[ConsumerState], Any] | None = None,
    ) -> None:
        if not name:
            raise ValueError("a consumer needs a name (ephemeral subscriptions are not supported)")
        self.client = client
        self.topic = topic
        self.name = name
        self.mode = DeliveryMode(mode)
        self.types = list(types)
        self.max_in_flight = max_in_flight
        self.batch_records = batch_records
        self.heartbeat_timeout = heartbeat_timeout
        self.on_state = on_state
        self.config = pb.ConsumerConfig()
        if config is not None:
            self.config.CopyFrom(config)
        self.config.mode = self.mode.value  # type: ignore[assignment]
        if ack_deadline is not None:
            self.config.ack_deadline.CopyFrom(_duration(ack_deadline))
        if max_deliveries is not None:
            self.config.max_deliveries = max_deliveries
        if min_backoff is not None:
            self.config.min_backoff.CopyFrom(_duration(min_backoff))
        if max_backoff is not None:
            self.config.max_backoff.CopyFrom(_duration(max_backoff))
        if dead_letter_topic is not None:
            self.config.dead_letter_topic = dead_letter_topic
        self.start = start
        self.stats = ConsumerStats()
        self.state = ConsumerState.IDLE
        self.caught_up = False
        self.last_heartbeat: pb.Heartbeat | None = None
        self.seek_epoch = 0
        in_flight_cap = max_in_flight or 1000
        self._acker = Acker(client, topic, name, cumulative=self.exclusive, linger=ack_linger,
                            flush_at=max(1, in_flight_cap // 2))
        self._inbox: deque[Message] = deque()
        # Waiting readers (next(), run()'s workers): a record wakes one of them, an
        # end of the stream wakes all.
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._state_changed = asyncio.Event()
        self._in_hand: dict[int, int] = {}  # offset -> serial of the Message holding it
        self._serials = itertools.count(1)
        self._last_offset: int | None = None  # exclusive: newest offset received
        # The newest record received, sent as last_seen on every resubscribe: a log that
        # diverged under us (an asynchronous PostgreSQL failover) then fails with
        # LOG_DIVERGED instead of handing out other events at offsets already seen.
        self._last_seen: tuple[int, str] | None = None
        self._receiving = True
        self._error: BaseException | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._call: Any = None
        self._stopping = False
        self._detached = False
        self._stop_requested = asyncio.Event()
        self._closed = False
        self._background: set[asyncio.Task[Any]] = set()
        self._loop = asyncio.get_running_loop()

    @property
    def exclusive(self) -> bool:
        return self.mode == DeliveryMode.EXCLUSIVE

    @property
    def committed_offset(self) -> int:
        """The committed offset as last reported by the server (Attached or an Ack)."""
        return self._acker.committed

    # Lifecycle

    def open(self) -> Consumer:
        """Starts the stream (iterating or run() do it too)."""
        if self._closed:
            raise ClosedError(f"consumer {self.name} is closed")
        if self._pump_task is None:
            self._set_state(ConsumerState.CONNECTING)
            self._pump_task = asyncio.create_task(self._pump(), name=f"pulsebus-consumer-{self.name}")
        return self

    async def __aenter__(self) -> Consumer:
        return self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Consumer:
        return self.open()

    async def __anext__(self) -> Message:
        return await self.next()

    async def next(self, timeout: float | None = None) -> Message:
        """The next message; raises StopAsyncIteration once closed, TimeoutError after
        `timeout` seconds, or the PulsebusError that ended the stream for good."""
        self.open()

        async def wait() -> Message:
            while True:
                if self._inbox:
                    return self._inbox.popleft()
                if self._error is not None:
                    raise self._error
                if self._closed or not self._receiving:
                    raise StopAsyncIteration
                await self._wait_for_record()

        async with asyncio.timeout(timeout):
            return await wait()

    async def _next_unless(self, *stops: asyncio.Event) -> Message | None:
        """run()'s next(): None once one of `stops` is set (call _wake() after setting
        it) or the consumer stopped receiving."""
        while True:
            if any(stop.is_set() for stop in stops):
                return None
            if self._inbox:
                return self._inbox.popleft()
            if self._error is not None:
                raise self._error
            if self._closed or not self._receiving:
                return None
            await self._wait_for_record()

    def _wake(self) -> None:
        self._notify(everyone=True)

    async def _wait_for_record(self) -> None:
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._notify()  # woken but leaving: pass the record on to another reader
            raise
        finally:
            if not waiter.done():
                waiter.cancel()

    def _notify(self, *, everyone: bool = False) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    async def flush(self) -> None:
        """Waits until every ack so far is with the server."""
        await self._acker.flush()

    def stop_receiving(self) -> None:
        """Takes no more records from the stream (those in hand can still be settled)."""
        self._receiving = False
        self._notify(everyone=True)

    async def close(self) -> None:
        """Stops receiving, sends the acks, and closes the stream, which gives back what
        is still unsettled: in shared modes the server hands it to the other
        subscribers at once, in exclusive mode the next subscriber resumes after the
        committed offset. Nothing unsettled is ever acked."""
        if self._closed:
            return
        await self.detach()
        # What is still unsettled was given back when the stream closed: the server
        # hands a leaving subscriber's records to the others at once (shared modes),
        # and an exclusive consumer's next subscriber resumes after the committed
        # offset. A Nack on top would count a second delivery attempt.
        self._in_hand.clear()
        self._closed = True
        await self._acker.close()
        for task in list(self._background):
            await asyncio.gather(task, return_exceptions=True)
        self._set_state(ConsumerState.CLOSED)
        self._notify(everyone=True)

    async def detach(self) -> None:
        """Stops receiving, sends the acks so far, and closes the stream, so the server
        gives what this subscriber holds unsettled to others (shared modes) at once.
        Settle the messages in hand before: afterwards their nacks are no-ops (they are
        given back already) and their acks may come too late."""
        self.stop_receiving()
        for message in self._inbox:
            message._settled = True  # given back with the rest at close, not one by one on GC
        self._inbox.clear()
        await self._acker.flush()
        await self._stop_pump()
        self._detached = True

    async def _stop_pump(self) -> None:
        # Cancel the gRPC call rather than the task: a task cancelled inside
        # grpc.aio's read() may not wake up for a long time.
        self._stopping = True
        self._stop_requested.set()
        if self._call is not None:
            self._call.cancel()
        task = self._pump_task
        if task is None or task.done():
            return
        done, _ = await asyncio.wait({task}, timeout=5.0)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=5.0)

    async def run(
        self,
        handler: Handler,
        concurrency: int = 1,
        shutdown: asyncio.Event | None = None,
        **options: Any,
    ) -> None:
        """Handles every message with `handler` until `shutdown` is set (see
        pulsebus.runner.run), then settles what is in hand and closes."""
        from pulsebus.runner import run

        await run(self, handler, concurrency=concurrency, shutdown=shutdown, **options)

    # State

    def _set_state(self, state: ConsumerState) -> None:
        if state == self.state:
            return
        self.state = state
        if state == ConsumerState.STANDBY:
            log.warning("pulsebus: consumer %s/%s is on standby: another subscriber holds it; "
                        "waiting to take over", self.topic, self.name)
        else:
            log.info("pulsebus: consumer %s/%s is %s", self.topic, self.name, state.value)
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()
        if self.on_state is not None:
            try:
                self.on_state(state)
            except Exception:
                log.exception("pulsebus: on_state callback failed")

    async def wait_for_state(self, *states: ConsumerState, timeout: float | None = None) -> ConsumerState:
        """Waits until the consumer is in one of `states` (TimeoutError after timeout)."""

        async def wait() -> ConsumerState:
            while self.state not in states:
                await self._state_changed.wait()
            return self.state

        async with asyncio.timeout(timeout):
            return await wait()

    # The stream

    def _request(self) -> pb.SubscribeRequest:
        request = pb.SubscribeRequest(topic=self.topic, consumer=self.name, types=self.types,
                                      max_in_flight=self.max_in_flight, config=self.config,
                                      batch_records=self.batch_records)
        if self._last_seen is not None:
            request.last_seen.offset, request.last_seen.event_id = self._last_seen
        if self.start == "latest":
            request.start.latest.SetInParent()
        elif self.start in (None, "earliest"):
            request.start.earliest.SetInParent()
        elif isinstance(self.start, int):
            request.start.offset = self.start
        elif isinstance(self.start, dt.datetime):
            request.start.time.FromDatetime(self.start)
        else:
            raise ValueError(f"start: {self.start!r} is not 'earliest', 'latest', an offset or a datetime")
        return request

    async def _pump(self) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._stopping:
            generation = self.client.generation
            call = self.client.stub.Subscribe(self._request(), metadata=self.client.metadata)
            self._call = call
            watchdog = _Watchdog(loop, self.heartbeat_timeout, call)
            try:
                while True:
                    response = await call.read()
                    watchdog.last_activity = loop.time()
                    if response is grpc.aio.EOF:  # type: ignore[attr-defined]
                        log.info("pulsebus: consumer %s/%s: the stream ended; reopening", self.topic, self.name)
                        break
                    if self._on_response(response):
                        attempt = 0
            except (asyncio.CancelledError, grpc.aio.AioRpcError) as err:
                # call.cancel() (ours: closing, or the watchdog) ends read() with
                # CancelledError or a CANCELLED status, depending on timing.
                task = asyncio.current_task()
                if isinstance(err, asyncio.CancelledError) and task is not None and task.cancelling():
                    raise
                if self._stopping:
                    return
                if watchdog.fired:
                    self.stats.watchdog_timeouts += 1
                    log.warning("pulsebus: consumer %s/%s heard nothing for %.1fs (no heartbeat): "
                                "reopening the stream on a new connection", self.topic, self.name,
                                self.heartbeat_timeout)
                    self.client.new_connection(generation)
                elif isinstance(err, grpc.aio.AioRpcError):
                    error = PulsebusError.from_rpc(err)
                    if err.code() not in RETRYABLE_STREAM_CODES:
                        log.error("pulsebus: consumer %s/%s failed: %s", self.topic, self.name, error)
                        self._error = error
                        self._notify(everyone=True)
                        self._set_state(ConsumerState.CLOSED)
                        return
                    log.info("pulsebus: consumer %s/%s: stream ended with %s; reconnecting",
                             self.topic, self.name, error)
            finally:
                watchdog.stop()
                call.cancel()
                self._call = None
            if self._stopping:
                return
            if self.client.closed:
                self._error = ClosedError(f"the client of consumer {self.name} was closed")
                self._notify(everyone=True)
                self._set_state(ConsumerState.CLOSED)
                return
            self.stats.reconnects += 1
            self._set_state(ConsumerState.RECONNECTING)
            try:
                async with asyncio.timeout(self.client.backoff.delay(attempt)):
                    await self._stop_requested.wait()
            except TimeoutError:
                pass
            attempt += 1

    def _on_response(self, response: pb.SubscribeResponse) -> bool:
        """Handles one stream message; True when it shows the stream is healthy."""
        kind = response.WhichOneof("message")
        if kind == "record":
            self._on_record(response.record)
        elif kind == "batch":
            self.stats.batches += 1
            for record in response.batch.records:
                self._on_record(record)
        elif kind == "heartbeat":
            self.stats.heartbeats += 1
            heartbeat = response.heartbeat
            previous, self.last_heartbeat = self.last_heartbeat, heartbeat
            stalled = heartbeat.at_max_in_flight or heartbeat.window_full
            if stalled and not (previous and (previous.at_max_in_flight or previous.window_full)):
                # a quiet stream that is not idle: say why nothing comes
                log.warning("pulsebus: consumer %s/%s is held up: %s (in flight %d, committed %d, head %d)",
                            self.topic, self.name,
                            "max_in_flight unacked records" if heartbeat.at_max_in_flight
                            else "the server's unsettled window is full",
                            heartbeat.in_flight, heartbeat.committed_offset, heartbeat.head_offset)
            return False
        elif kind == "attached":
            attached = response.attached
            self.seek_epoch = attached.seek_epoch
            self._acker.attached(attached.committed_offset, attached.seek_epoch)
            if self.exclusive and (self._last_offset is None or self._last_offset < attached.committed_offset):
                self._last_offset = attached.committed_offset
            self.caught_up = False
            self._set_state(ConsumerState.ATTACHED)
        elif kind == "standby":
            self._set_state(ConsumerState.STANDBY)
        elif kind == "caught_up":
            self.caught_up = True
        elif kind == "repositioned":
            self._on_repositioned(response.repositioned)
        return True

    def _on_record(self, record: pb.Record) -> None:
        if not self._receiving:
            return  # shutting down: it stays unacked and comes again
        offset = record.offset
        if offset in self._in_hand:
            self.stats.dropped_duplicates += 1
            return
        if self.exclusive and self._last_offset is not None:
            if offset <= self._last_offset:
                self.stats.dropped_duplicates += 1
                return
            if offset > self._last_offset + 1 and not self.types:
                self.stats.gaps += 1
                log.warning("pulsebus: consumer %s/%s: gap, offset %d after %d",
                            self.topic, self.name, offset, self._last_offset)
        if self.exclusive:
            self._last_offset = offset
        if record.HasField("event") and (self._last_seen is None or offset > self._last_seen[0]):
            self._last_seen = (offset, record.event.id)
        serial = next(self._serials)
        self._in_hand[offset] = serial
        self.stats.delivered += 1
        self._inbox.append(Message(self, record, self.seek_epoch, serial))
        self._notify()

    def _on_repositioned(self, repositioned: pb.Repositioned) -> None:
        committed = repositioned.committed_offset
        self.seek_epoch = repositioned.seek_epoch
        self._acker.repositioned(committed, repositioned.seek_epoch)
        if self.exclusive:
            self._last_offset = committed
            # what we hold after `committed` comes again from the new position
            kept = deque(m for m in self._inbox if m.offset <= committed)
            for message in self._inbox:
                if message.offset > committed:
                    message._settled = True  # superseded, not abandoned
            self._inbox = kept
            self._in_hand = {o: s for o, s in self._in_hand.items() if o <= committed}
        self.caught_up = False

    # Settling (called by Message)

    def _release(self, message: Message) -> bool:
        if self._in_hand.get(message.offset) == message._serial:
            del self._in_hand[message.offset]
            return True
        return False

    def _settle(self, message: Message) -> None:
        self._release(message)
        self._acker.settle(message.offset, message.seek_epoch)

    async def _nack(self, messages: list[Message], *, delay: float | None) -> None:
        for message in messages:
            self._release(message)
        if self._detached:
            return  # the closed stream gave them back already (see close())
        await self._nack_offsets([m.offset for m in messages], delay=delay)

    async def _nack_offsets(self, offsets: list[int], *, delay: float | None) -> None:
        request = pb.NackRequest(topic=self.topic, consumer=self.name, offsets=offsets)
        if delay is not None:
            request.delay.CopyFrom(_duration(delay))
        await self.client.call("Nack", request)

    async def _dead_letter(self, message: Message, reason: str) -> None:
        self._release(message)
        request = pb.NackRequest(topic=self.topic, consumer=self.name, offsets=[message.offset],
                                 dead_letter=True, reason=reason)
        await self.client.call("Nack", request)
        if self.exclusive:
            # parked and counted as acked by the server; the low-water mark moves over it
            self._acker.settle(message.offset, message.seek_epoch)

    async def _extend(self, offsets: list[int], deadline: float | None = None) -> None:
        if self.exclusive or not offsets:
            return
        request = pb.ExtendAckDeadlineRequest(topic=self.topic, consumer=self.name, offsets=offsets)
        if deadline is not None:
            request.deadline.CopyFrom(_duration(deadline))
        await self.client.call("ExtendAckDeadline", request)

    def _abandoned(self, offset: int, serial: int) -> None:
        """A Message was garbage-collected unsettled: nack it (never ack it). Runs
        from __del__, which may interrupt any code, so the work is only scheduled."""
        if not self._closed:
            self._loop.call_soon_threadsafe(self._nack_abandoned, offset, serial)

    def _nack_abandoned(self, offset: int, serial: int) -> None:
        if self._closed or self._in_hand.get(offset) != serial:
            return
        del self._in_hand[offset]
        log.warning("pulsebus: %s/%s offset %d was dropped unsettled: nacking it", self.topic, self.name, offset)
        self._spawn(self._nack_offsets([offset], delay=None))

    def _spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("pulsebus: %s/%s: %s (the record comes again)", self.topic, self.name, task.exception())
