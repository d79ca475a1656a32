"""pulsebus: asyncio client for the pulsebus event log (gRPC, grpc.aio).

    import pulsebus
    async with pulsebus.connect("http://127.0.0.1:50051") as client:
        await client.publish_json("lessons", "lesson.published", {"lesson_id": "42"})
        async with client.consumer("lessons", "search-indexer") as consumer:
            async for message in consumer:
                print(message.offset, message.data)
                await message.ack()

Layout: `client` (connect, Client: publish, admin calls) → `publisher` (batching) and
`events` (building events, EduPulse payloads) → `consumer` (the stream engine:
reconnect, watchdog, states, duplicate drop) → `message` (ack / nack / dead_letter),
`acks` (coalescing) and `runner` (run(handler, concurrency, shutdown)); `errors`,
`backoff`, `ids` (UUIDv7); `_gen` holds the stubs generated from proto/ at build time.
"""

from pulsebus._proto import edupulse_pb2 as edupulse
from pulsebus._proto import pb
from pulsebus.backoff import Backoff
from pulsebus.client import Client, connect
from pulsebus.consumer import Consumer, ConsumerState, ConsumerStats, DeliveryMode
from pulsebus.errors import ClosedError, PulsebusError
from pulsebus.events import (
    EDUPULSE_TYPES,
    Event,
    binary_event,
    json_event,
    proto_event,
    text_event,
    unpack,
)
from pulsebus.ids import new_id, uuid7
from pulsebus.message import Message
from pulsebus.publisher import Publisher
from pulsebus.runner import Fail, Handler, Retry

__all__ = [
    "EDUPULSE_TYPES",
    "Backoff",
    "Client",
    "ClosedError",
    "Consumer",
    "ConsumerState",
    "ConsumerStats",
    "DeliveryMode",
    "Event",
    "Fail",
    "Handler",
    "Message",
    "Publisher",
    "PulsebusError",
    "Retry",
    "binary_event",
    "connect",
    "edupulse",
    "json_event",
    "new_id",
    "pb",
    "proto_event",
    "text_event",
    "unpack",
    "uuid7",
]
