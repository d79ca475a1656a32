"""The connection: `connect(url)` gives a Client for publishing, consuming and the
admin calls, over one grpc.aio channel (TLS and a bearer token optional)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import grpc

from pulsebus._proto import pb, pb_grpc
from pulsebus.backoff import Backoff
from pulsebus.errors import RETRYABLE_CALL_CODES, PulsebusError
from pulsebus.events import json_event, proto_event
from pulsebus.ids import new_id

if TYPE_CHECKING:
    from google.protobuf.message import Message as ProtoMessage

    from pulsebus.consumer import Consumer, DeliveryMode
    from pulsebus.publisher import Publisher

log = logging.getLogger("pulsebus")

# HTTP/2 keepalive pings: a dead connection is noticed within about 40 s even on a
# stream that is waiting for records (the heartbeat watchdog notices it sooner).
DEFAULT_CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # reconnect attempts of the channel itself back off up to 5 s
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    # a channel of its own connection: new_connection() must not get the old one back
    # from grpc's process-wide subchannel pool
    ("grpc.use_local_subchannel_pool", 1),
)


def _read(value: str | bytes | Path | None) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return Path(value).read_bytes()


def connect(
    url: str,
    *,
    token: str | None = None,
    ca: str | bytes | Path | None = None,
    cert: str | bytes | Path | None = None,
    key: str | bytes | Path | None = None,
    timeout: float = 10.0,
    retry_for: float = 30.0,
    backoff: Backoff | None = None,
    channel_options: Sequence[tuple[str, Any]] = (),
) -> Client:
    """A client for the server at `url` (`http://host:port`, `https://host:port`, or a
    bare `host:port`, which is plaintext unless `ca` is given).

    Args:
        token: sent as `authorization: Bearer <token>` on every call.
        ca: PEM (bytes, or a file path) of the CA that signed the server's certificate;
            turns on TLS. `https://` without `ca` uses the system roots.
        cert, key: the client certificate and key (PEM), for mutual TLS.
        timeout: deadline of one unary call attempt, in seconds.
        retry_for: how long unary calls are retried on UNAVAILABLE / DEADLINE_EXCEEDED.
        backoff: the back-off between retries and stream reconnects.
        channel_options: extra grpc channel options (override the defaults).

    Call it from a running event loop; close the client with `await client.close()`
    or `async with connect(...) as client:`.
    """
    parts = urlsplit(url if "://" in url else ("https://" if ca else "http://") + url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not a pulsebus URL: {url!r} (want http://host:port or https://host:port)")
    target = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if ":" in parts.hostname:  # IPv6 literal
        target = f"[{parts.hostname}]:{parts.port or 443}"
    options = dict(DEFAULT_CHANNEL_OPTIONS)
    options.update(dict(channel_options))
    if parts.scheme == "https":
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(ca), private_key=_read(key), certificate_chain=_read(cert)
        )
    else:
        credentials = None
        if cert or key:
            raise ValueError("a client certificate needs TLS: use https:// or pass ca=")

    def open_channel() -> grpc.aio.Channel:
        if credentials is not None:
            return grpc.aio.secure_channel(target, credentials, options=list(options.items()))
        return grpc.aio.insecure_channel(target, options=list(options.items()))

    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    return Client(open_channel, metadata=metadata, timeout=timeout, retry_for=retry_for,
                  backoff=backoff or Backoff())


class Client:
    """A connection to pulsebus. Cheap to share: every publisher and consumer of a
    process can use one."""

    def __init__(
        self,
        open_channel: Callable[[], grpc.aio.Channel],
        *,
        metadata: Sequence[tuple[str, str]] = (),
        timeout: float = 10.0,
        retry_for: float = 30.0,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._open_channel = open_channel
        self.channel = open_channel()
        self.stub = pb_grpc.EventBusStub(self.channel)
        # Bumped by every new_connection(), so that several consumers whose watchdogs
        # fire for the same dead link replace it once.
        self.generation = 0
        self.closed = False
        self._old_channels: set[asyncio.Task[None]] = set()
        self.metadata = tuple(metadata)
        self.timeout = timeout
        self.retry_for = retry_for
        self.backoff = backoff

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the channel: open streams end, and their consumers' iterations raise
        ClosedError (close consumers first to settle what they hold)."""
        self.closed = True
        await self.channel.close(None)
        for task in list(self._old_channels):
            await task

    def new_connection(self, generation: int) -> None:
        """Replaces the channel (a new TCP connection) if it is still the one of
        `generation`: a stream that went silent may sit on a link that is dead without
        the OS knowing yet, and a new stream on the same connection would hang too.
        Calls on the old channel end (and are retried on the new one)."""
        if generation != self.generation:
            return
        old = self.channel
        self.channel = self._open_channel()
        self.stub = pb_grpc.EventBusStub(self.channel)
        self.generation += 1
        log.warning("pulsebus: opened a new connection (replacing a silent one)")
        task = asyncio.get_running_loop().create_task(old.close(None))
        self._old_channels.add(task)
        task.add_done_callback(self._old_channels.discard)

    async def call(self, method: str, request: Any, *, retry: bool = True) -> Any:
        """One unary call of EventBus `method` ("Publish", "Ack"...), retried with
        back-off and jitter on UNAVAILABLE and DEADLINE_EXCEEDED for up to `retry_for`
        seconds (each attempt on the current channel); failures raise PulsebusError."""
        give_up = time.monotonic() + self.retry_for
        attempt = 0
        while True:
            rpc = getattr(self.stub, method)
            generation = self.generation
            try:
                return await rpc(request, metadata=self.metadata, timeout=self.timeout)
            except grpc.aio.AioRpcError as err:
                error = PulsebusError.from_rpc(err)
                delay = self.backoff.delay(attempt)
                # CANCELLED because new_connection() closed the channel under it: retry
                replaced = err.code() == grpc.StatusCode.CANCELLED and generation != self.generation
                retryable = err.code() in RETRYABLE_CALL_CODES or replaced
                if not retry or not retryable or time.monotonic() + delay > give_up:
                    raise error from None
                log.info("pulsebus: %s failed (%s), retrying in %.2fs", type(request).__name__, error, delay)
                await asyncio.sleep(delay)
                attempt += 1

    # Publishing

    async def publish(self, topic: str, events: Iterable[pb.Event]) -> list[pb.PublishResult]:
        """Appends the events to the topic atomically and returns one result per event
        (offset, duplicate). Events without an id get a UUIDv7 first (written into the
        Event), so the retries after UNAVAILABLE or DEADLINE_EXCEEDED store them once."""
        batch = list(events)
        for event in batch:
            if not event.id:
                event.id = new_id()
        response = await self.call("Publish", pb.PublishRequest(topic=topic, events=batch))
        return list(response.results)

    async def publish_json(self, topic: str, type: str, data: Any, **fields: Any) -> pb.PublishResult:
        """Publishes one JSON event (see `json_event` for the fields)."""
        (result,) = await self.publish(topic, [json_event(type, data, **fields)])
        return result

    async def publish_proto(
        self, topic: str, message: ProtoMessage, *, type: str | None = None, **fields: Any
    ) -> pb.PublishResult:
        """Publishes one protobuf payload, e.g. an EduPulse QuizSubmitted (see
        `proto_event`)."""
        (result,) = await self.publish(topic, [proto_event(message, type=type, **fields)])
        return result

    def publisher(self, topic: str, *, linger: float = 0.005, max_batch: int = 500) -> Publisher:
        """A batching publisher: concurrent `publish(event)` calls within `linger`
        seconds go out as one Publish of at most `max_batch` events; each caller gets
        its own result."""
        from pulsebus.publisher import Publisher

        return Publisher(self, topic, linger=linger, max_batch=max_batch)

    # Consuming

    def consumer(self, topic: str, name: str, *, mode: DeliveryMode | int | None = None, **options: Any) -> Consumer:
        """A durable consumer of the topic (see `Consumer` for the options). Iterate it
        (`async for message in consumer`) or `await consumer.run(handler)`."""
        from pulsebus.consumer import Consumer, DeliveryMode

        return Consumer(self, topic, name, mode=DeliveryMode(mode or DeliveryMode.EXCLUSIVE), **options)

    # Admin and reads

    async def read(self, topic: str, from_offset: int = 0, limit: int = 0) -> pb.ReadResponse:
        return await self.call("Read", pb.ReadRequest(topic=topic, from_offset=from_offset, limit=limit))

    async def list_consumers(self, topic: str) -> list[pb.ConsumerInfo]:
        """Every durable consumer of the topic (all pages)."""
        consumers: list[pb.ConsumerInfo] = []
        token = ""
        while True:
            page = await self.call(
                "ListConsumers", pb.ListConsumersRequest(topic=topic, page_size=1000, page_token=token)
            )
            consumers.extend(page.consumers)
            token = page.next_page_token
            if not token:
                return consumers

    async def consumer_info(self, topic: str, name: str) -> pb.ConsumerInfo | None:
        """One consumer's committed offset, lag, in-flight count..., or None."""
        return next((c for c in await self.list_consumers(topic) if c.name == name), None)

    async def list_topics(self) -> list[pb.TopicInfo]:
        topics: list[pb.TopicInfo] = []
        token = ""
        while True:
            page = await self.call("ListTopics", pb.ListTopicsRequest(page_size=1000, page_token=token))
            topics.extend(page.topics)
            token = page.next_page_token
            if not token:
                return topics

    async def seek(self, topic: str, consumer: str, offset: int) -> pb.SeekResponse:
        """Moves a consumer so that its next record is `offset`."""
        start = pb.StartPosition(offset=offset)
        return await self.call("Seek", pb.SeekRequest(topic=topic, consumer=consumer, start=start))

    async def update_consumer(self, topic: str, consumer: str, config: pb.ConsumerConfig) -> pb.ConsumerInfo:
        request = pb.UpdateConsumerRequest(topic=topic, consumer=consumer, config=config)
        return await self.call("UpdateConsumer", request)
