"""Errors: every failed call surfaces as a PulsebusError carrying the gRPC status code,
the server's message and, when the server sent one, the google.rpc.ErrorInfo reason
(e.g. TOPIC_NOT_FOUND, LEASE_LOST) or the BadRequest field."""

from __future__ import annotations

from typing import Any

import grpc

# Unary calls are retried on these (publishes are safe to retry: their ids are ours).
RETRYABLE_CALL_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# A Subscribe stream that ends with one of these is reopened (after a back-off); any
# other code is a mistake of the caller (bad name, mode mismatch, no permission) and is
# raised to the consumer's user.
RETRYABLE_STREAM_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,  # LEASE_LOST: another subscriber took over; wait as standby
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # TOO_MANY_SUBSCRIPTIONS, for now
        grpc.StatusCode.INTERNAL,  # also what a connection reset mid-stream looks like
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.CANCELLED,  # not by us: by a proxy or the server going away
    }
)


class PulsebusError(Exception):
    """A failed pulsebus call.

    Attributes:
        code: the gRPC status code.
        message: the server's message (names the field and the rule for INVALID_ARGUMENT).
        reason: the ErrorInfo reason, e.g. "TOPIC_NOT_FOUND", when the server sent one.
        field: the BadRequest field path, e.g. "events[0].type", for INVALID_ARGUMENT.
        metadata: the ErrorInfo metadata (topic, consumer).
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str | None = None,
        field: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.reason = reason
        self.field = field
        self.metadata = metadata or {}
        super().__init__(f"{code.name}: {message}" + (f" ({reason})" if reason else ""))

    @property
    def retryable(self) -> bool:
        """True for UNAVAILABLE and DEADLINE_EXCEEDED: the same call may succeed later."""
        return self.code in RETRYABLE_CALL_CODES

    @classmethod
    def from_rpc(cls, err: grpc.aio.AioRpcError) -> PulsebusError:
        details = _status_details(err.trailing_metadata())
        return cls(err.code(), err.details() or "", **details)


class ClosedError(RuntimeError):
    """The consumer or client was closed."""


# google.rpc.Status and its details, decoded from grpc-status-details-bin by hand (a
# few dozen lines instead of a dependency on googleapis-common-protos).
def _status_details(trailers: Any) -> dict[str, Any]:
    raw = None
    for key, value in trailers or ():
        if key == "grpc-status-details-bin":
            raw = value
    if not isinstance(raw, bytes):
        return {}
    try:
        found: dict[str, Any] = {}
        for number, detail in _fields(raw):
            if number != 3 or not isinstance(detail, bytes):
                continue
            parts = dict(_fields(detail))
            type_url, value = parts.get(1, b""), parts.get(2, b"")
            if type_url.endswith(b"google.rpc.ErrorInfo"):
                info = list(_fields(value))
                found["reason"] = next((v.decode() for n, v in info if n == 1), None)
                found["metadata"] = {}
                for n, entry in info:
                    if n == 3:
                        kv = dict(_fields(entry))
                        found["metadata"][kv.get(1, b"").decode()] = kv.get(2, b"").decode()
            elif type_url.endswith(b"google.rpc.BadRequest"):
                for n, violation in _fields(value):
                    if n == 1:
                        found["field"] = dict(_fields(violation)).get(1, b"").decode()
                        break
        return found
    except (ValueError, IndexError, UnicodeDecodeError):
        return {}


def _fields(data: bytes):
    """(field number, value) pairs of a protobuf message: ints for varints, bytes for
    length-delimited fields; fixed-width fields are skipped."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 2:
            length, i = _varint(data, i)
            yield number, data[i : i + length]
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire}")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, i
        shift += 7
