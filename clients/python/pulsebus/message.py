"""A delivered record and what its holder can do with it: ack, nack, dead-letter, or
say it is still working on it."""

from __future__ import annotations

import datetime as dt
import json as jsonlib
from typing import TYPE_CHECKING, Any, Type

from google.protobuf.message import Message as ProtoMessage

from pulsebus._proto import pb
from pulsebus.events import unpack

if TYPE_CHECKING:
    from pulsebus.consumer import Consumer


class Message:
    """One record delivered to a consumer. Settle it exactly once: `ack()` (done),
    `nack(delay)` (give it back for redelivery), or `dead_letter(reason)` (never retry).
    A message that is dropped unsettled, or still unsettled when the consumer closes,
    is nacked, never acked."""

    __slots__ = ("record", "seek_epoch", "_consumer", "_settled", "_serial")

    def __init__(self, consumer: Consumer, record: pb.Record, seek_epoch: int, serial: int) -> None:
        self.record = record
        self._serial = serial
        self.seek_epoch = seek_epoch
        self._consumer = consumer
        self._settled = False

    # The record

    @property
    def topic(self) -> str:
        return self.record.topic

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def delivery_attempt(self) -> int:
        """1 on the first delivery, 2, 3... on redeliveries (shared modes)."""
        return self.record.delivery_attempt

    @property
    def event(self) -> pb.Event:
        return self.record.event

    @property
    def id(self) -> str:
        return self.record.event.id

    @property
    def type(self) -> str:
        return self.record.event.type

    @property
    def subject(self) -> str:
        return self.record.event.subject

    @property
    def attributes(self) -> dict[str, str]:
        return dict(self.record.event.attributes)

    @property
    def appended_at(self) -> dt.datetime:
        return self.record.appended_at.ToDatetime(tzinfo=dt.timezone.utc)

    @property
    def settled(self) -> bool:
        return self._settled

    def json(self) -> Any:
        """The payload parsed as JSON (text_data, or binary_data as UTF-8)."""
        event = self.record.event
        kind = event.WhichOneof("data")
        if kind == "text_data":
            return jsonlib.loads(event.text_data)
        if kind == "binary_data":
            return jsonlib.loads(event.binary_data)
        raise ValueError(f"offset {self.offset}: payload is {kind or 'empty'}, not JSON")

    # typing.Type, because `type` is a property of this class
    def proto(self, cls: Type[ProtoMessage] | None = None) -> ProtoMessage:  # noqa: UP006
        """The protobuf payload, unpacked from its Any: as `cls` when given, else as the
        class registered for its type URL (every EduPulse event)."""
        event = self.record.event
        if event.WhichOneof("data") != "proto_data":
            raise ValueError(f"offset {self.offset}: payload is not a protobuf Any")
        if cls is None:
            return unpack(event.proto_data)
        message = cls()
        if not event.proto_data.Unpack(message):
            raise ValueError(f"offset {self.offset}: payload is {event.proto_data.type_url}, not {cls.__name__}")
        return message

    @property
    def data(self) -> Any:
        """The payload as Python: a protobuf message, parsed JSON, text or bytes."""
        event = self.record.event
        kind = event.WhichOneof("data")
        if kind == "proto_data":
            return self.proto()
        if kind == "text_data":
            ct = event.content_type.split(";", 1)[0].strip()
            return self.json() if ct == "application/json" or ct.endswith("+json") else event.text_data
        if kind == "binary_data":
            return event.binary_data
        return None

    # Settling

    def _take(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        return True

    async def ack(self) -> None:
        """Done with it. The ack is coalesced with others and sent within the consumer's
        ack linger; `await consumer.flush()` waits until the server has it."""
        if self._take():
            self._consumer._settle(self)

    async def nack(self, delay: float | None = None) -> None:
        """Give it back: redelivered after `delay` seconds (None: the consumer's back-off).
        In exclusive mode the stream rewinds to the committed offset after the delay."""
        if self._take():
            await self._consumer._nack([self], delay=delay)

    async def dead_letter(self, reason: str = "") -> None:
        """Send it to the dead-letter topic (`<topic>.dlq` by default) now."""
        if self._take():
            await self._consumer._dead_letter(self, reason)

    async def in_progress(self) -> None:
        """Still working on it: the ack deadline starts again (shared modes; a no-op in
        exclusive mode, which has no deadline)."""
        if not self._settled:
            await self._consumer._extend([self.offset])

    def __del__(self) -> None:
        if not self._settled:
            try:
                self._consumer._abandoned(self.offset, self._serial)
            except Exception:  # interpreter shutdown, closed loop: nothing to do
                pass

    def __repr__(self) -> str:
        return f"<Message {self.topic}@{self.offset} {self.type} attempt={self.delivery_attempt}>"
