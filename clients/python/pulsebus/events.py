"""Building events: JSON, text, binary and protobuf (EduPulse) payloads.

Every helper gives the event a client-assigned UUIDv7 id unless one is passed, so a
publish retried after UNAVAILABLE or DEADLINE_EXCEEDED is stored once.
"""

from __future__ import annotations

import datetime as dt
import json as jsonlib
from collections.abc import Mapping
from typing import Any

from google.protobuf import any_pb2, descriptor_pool, message as pb_message, message_factory

from pulsebus._proto import edupulse_pb2, pb
from pulsebus.ids import new_id

Event = pb.Event

# The event type each EduPulse payload is published under unless told otherwise.
EDUPULSE_TYPES: dict[str, str] = {
    "edupulse.events.v1.LessonPublished": "lesson.published",
    "edupulse.events.v1.QuizSubmitted": "quiz.submitted",
    "edupulse.events.v1.PeerFeedbackGiven": "peer_feedback.given",
    "edupulse.events.v1.BadgeAwarded": "badge.awarded",
    "edupulse.events.v1.LearningPulseSubmitted": "learning_pulse.submitted",
    "edupulse.events.v1.PaymentProcessed": "payment.processed",
}

_ = edupulse_pb2  # registers the EduPulse messages, so payloads unpack by type URL


def _base(
    type: str,
    *,
    id: str | None,
    source: str,
    subject: str,
    time: dt.datetime | None,
    correlation_id: str,
    causation_id: str,
    schema_version: int,
    attributes: Mapping[str, str] | None,
    content_type: str,
) -> pb.Event:
    event = pb.Event(
        id=id or new_id(),
        type=type,
        source=source,
        subject=subject,
        correlation_id=correlation_id,
        causation_id=causation_id,
        schema_version=schema_version,
        attributes=dict(attributes or {}),
        content_type=content_type,
    )
    if time is not None:
        event.time.FromDatetime(time)
    return event


def json_event(
    type: str,
    data: Any,
    *,
    id: str | None = None,
    source: str = "",
    subject: str = "",
    time: dt.datetime | None = None,
    correlation_id: str = "",
    causation_id: str = "",
    schema_version: int = 0,
    attributes: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> pb.Event:
    """An event whose payload is `data` as JSON text (content type application/json)."""
    event = _base(type, id=id, source=source, subject=subject, time=time,
                  correlation_id=correlation_id, causation_id=causation_id,
                  schema_version=schema_version, attributes=attributes,
                  content_type=content_type)
    event.text_data = data if isinstance(data, str) else jsonlib.dumps(data, separators=(",", ":"))
    return event


def text_event(type: str, text: str, *, content_type: str = "text/plain", **fields: Any) -> pb.Event:
    """An event with a text payload."""
    event = _base(type, content_type=content_type, **_defaults(fields))
    event.text_data = text
    return event


def binary_event(
    type: str, data: bytes, *, content_type: str = "application/octet-stream", **fields: Any
) -> pb.Event:
    """An event with a binary payload."""
    event = _base(type, content_type=content_type, **_defaults(fields))
    event.binary_data = data
    return event


def proto_event(message: pb_message.Message, *, type: str | None = None, **fields: Any) -> pb.Event:
    """An event whose payload is a protobuf message packed as an Any, e.g. an EduPulse
    `LessonPublished`; `type` defaults to its EduPulse event type ("lesson.published")
    or else the message's full name."""
    name = message.DESCRIPTOR.full_name
    event = _base(type or EDUPULSE_TYPES.get(name, name), content_type="application/protobuf",
                  **_defaults(fields))
    event.proto_data.Pack(message)
    return event


def _defaults(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = dict(id=None, source="", subject="", time=None, correlation_id="",
                               causation_id="", schema_version=0, attributes=None)
    unknown = set(fields) - set(out)
    if unknown:
        raise TypeError(f"unknown event fields: {', '.join(sorted(unknown))}")
    out.update(fields)
    return out


def unpack(value: any_pb2.Any) -> pb_message.Message:
    """The message in an Any, of the class registered for its type URL (every EduPulse
    event and every other generated module imported in this process). Raises KeyError
    for a type this process does not know."""
    name = value.type_url.rsplit("/", 1)[-1]
    descriptor = descriptor_pool.Default().FindMessageTypeByName(name)
    message = message_factory.GetMessageClass(descriptor)()
    if not value.Unpack(message):
        raise ValueError(f"cannot unpack {value.type_url}")
    return message
