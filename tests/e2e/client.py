#!/usr/bin/env python3
"""End-to-end check of pulsebus from Python grpcio, the way an EduPulse service uses it.

Generates stubs from the repository's proto/ into a temporary directory, then against a
running server:

1. publishes a batch of 3 EduPulse events with explicit ids (a protobuf Any packing a
   QuizSubmitted, a JSON text payload, a binary payload) and expects offsets 1..3;
2. publishes one of them again and expects duplicate=True with its original offset;
3. reads the topic back and checks ids, types, payloads and offsets;
4. sends an event without a type and expects INVALID_ARGUMENT naming events[0].type;
5. times --count single-event publishes.

Prints one JSON line to stdout: {"ok": true, "publishes": N, "seconds": s, "per_second": r}.
On a failed check it prints {"ok": false, "error": ...} and the reason on stderr, and
exits 1.

Usage: client.py --addr 127.0.0.1:50051 --topic e2e-python [--count 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Per-RPC deadline, in seconds.
DEADLINE = 10.0
REPO = Path(__file__).resolve().parents[2]
QUIZ_URL = "type.googleapis.com/edupulse.events.v1.QuizSubmitted"


class CheckFailed(Exception):
    """A check against the server's behaviour failed."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def well_known_protos() -> str:
    """The directory of the well-known .proto files bundled with grpc_tools."""
    try:
        from importlib.resources import files

        return str(files("grpc_tools") / "_proto")
    except (ImportError, TypeError):  # Python < 3.9
        import pkg_resources

        return pkg_resources.resource_filename("grpc_tools", "_proto")


def generate_stubs(proto_dir: Path, out_dir: Path) -> None:
    """Runs protoc (from grpc_tools) over every .proto under proto_dir into out_dir."""
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))
    check(bool(protos), f"no .proto files under {proto_dir}")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known_protos()}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    code = protoc.main(args)
    check(code == 0, f"protoc failed with exit code {code}: {' '.join(args)}")


def run(addr: str, topic: str, count: int) -> dict:
    import grpc
    from google.protobuf import any_pb2, timestamp_pb2

    from edupulse.events.v1 import events_pb2
    from pulsebus.v1 import pulsebus_pb2 as pb
    from pulsebus.v1 import pulsebus_pb2_grpc

    channel = grpc.insecure_channel(addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    except grpc.FutureTimeoutError:
        raise CheckFailed(f"cannot connect to {addr} within {DEADLINE}s") from None
    bus = pulsebus_pb2_grpc.EventBusStub(channel)

    def publish(events):
        return bus.Publish(pb.PublishRequest(topic=topic, events=events), timeout=DEADLINE).results

    # 1. A batch of three EduPulse events, one of each payload kind.
    submitted_at = timestamp_pb2.Timestamp(seconds=1_735_787_045)
    quiz = events_pb2.QuizSubmitted(
        quiz_id="q-1",
        lesson_id="l-42",
        student_id="s-9",
        score=87,
        max_score=100,
        attempt=2,
        submitted_at=submitted_at,
    )
    quiz_any = any_pb2.Any()
    quiz_any.Pack(quiz)
    pulse = {"pulseId": "p-1", "lessonId": "l-42", "confidence": 4, "difficulty": 2}
    raw = bytes([0, 159, 146, 150, 255])
    batch = [
        pb.Event(
            id=str(uuid.uuid4()),
            type="quiz.submitted",
            source="quiz-service",
            subject="student/s-9",
            attributes={"tenant": "school-7"},
            content_type="application/protobuf",
            proto_data=quiz_any,
        ),
        pb.Event(
            id=str(uuid.uuid4()),
            type="learning_pulse.submitted",
            source="pulse-service",
            subject="lesson/l-42",
            content_type="application/json",
            text_data=json.dumps(pulse),
        ),
        pb.Event(
            id=str(uuid.uuid4()),
            type="media.chunk",
            source="media-service",
            content_type="application/octet-stream",
            binary_data=raw,
        ),
    ]
    results = publish(batch)
    check(len(results) == 3, f"batch publish returned {len(results)} results, want 3")
    for i, (sent, got) in enumerate(zip(batch, results)):
        check(got.id == sent.id, f"batch result {i}: id {got.id!r}, want {sent.id!r}")
        check(got.offset == i + 1, f"batch result {i}: offset {got.offset}, want {i + 1}")
        check(not got.duplicate, f"batch result {i}: duplicate=True on first publish")

    # 2. Publishing an id again is a no-op that reports the original offset.
    again = publish([batch[1]])
    check(len(again) == 1, f"re-publish returned {len(again)} results, want 1")
    check(again[0].duplicate, "re-publish of a stored id: duplicate=False, want True")
    check(again[0].offset == 2, f"re-publish: offset {again[0].offset}, want the original 2")
    check(again[0].id == batch[1].id, f"re-publish: id {again[0].id!r}, want {batch[1].id!r}")

    # 3. The log holds exactly the batch, payloads intact.
    page = bus.Read(pb.ReadRequest(topic=topic, from_offset=0, limit=100), timeout=DEADLINE)
    check(page.head_offset == 3, f"read: head_offset {page.head_offset}, want 3")
    offsets = [r.offset for r in page.records]
    check(offsets == [1, 2, 3], f"read: offsets {offsets}, want [1, 2, 3]")
    for sent, record in zip(batch, page.records):
        got = record.event
        check(record.topic == topic, f"offset {record.offset}: topic {record.topic!r}")
        check(got.id == sent.id, f"offset {record.offset}: id {got.id!r}, want {sent.id!r}")
        check(got.type == sent.type, f"offset {record.offset}: type {got.type!r}, want {sent.type!r}")
        check(got.source == sent.source, f"offset {record.offset}: source {got.source!r}")
        check(got.content_type == sent.content_type, f"offset {record.offset}: content_type {got.content_type!r}")
    quiz_got = page.records[0].event
    check(quiz_got.WhichOneof("data") == "proto_data", "offset 1: payload is not proto_data")
    check(quiz_got.proto_data.type_url == QUIZ_URL, f"offset 1: type_url {quiz_got.proto_data.type_url!r}")
    decoded = events_pb2.QuizSubmitted()
    check(quiz_got.proto_data.Unpack(decoded), "offset 1: Any does not unpack as QuizSubmitted")
    check(decoded == quiz, f"offset 1: QuizSubmitted {decoded} differs from what was sent")
    check(dict(quiz_got.attributes) == {"tenant": "school-7"}, f"offset 1: attributes {dict(quiz_got.attributes)}")
    pulse_got = page.records[1].event
    check(pulse_got.WhichOneof("data") == "text_data", "offset 2: payload is not text_data")
    check(json.loads(pulse_got.text_data) == pulse, f"offset 2: JSON {pulse_got.text_data!r}, want {pulse}")
    raw_got = page.records[2].event
    check(raw_got.WhichOneof("data") == "binary_data", "offset 3: payload is not binary_data")
    check(raw_got.binary_data == raw, f"offset 3: bytes {raw_got.binary_data!r}, want {raw!r}")

    # 4. A bad event is rejected, naming the field.
    try:
        publish([pb.Event(type="", content_type="application/json", text_data="{}")])
    except grpc.RpcError as err:
        check(
            err.code() == grpc.StatusCode.INVALID_ARGUMENT,
            f"empty type: code {err.code()}, want INVALID_ARGUMENT ({err.details()})",
        )
        check("events[0].type" in (err.details() or ""), f"empty type: message {err.details()!r} does not name events[0].type")
    else:
        raise CheckFailed("empty type: publish succeeded, want INVALID_ARGUMENT")

    # 5. Throughput of single-event publishes, one after the other.
    start = time.perf_counter()
    for i in range(count):
        event = pb.Event(
            type="learning_pulse.submitted",
            source="e2e-python",
            content_type="application/json",
            text_data=json.dumps({"seq": i}),
        )
        got = publish([event])
        want = 4 + i
        check(len(got) == 1 and got[0].offset == want, f"timed publish {i}: offset {got[0].offset if got else None}, want {want}")
    seconds = time.perf_counter() - start
    channel.close()
    return {
        "ok": True,
        "publishes": count,
        "seconds": round(seconds, 4),
        "per_second": round(count / seconds, 1) if seconds > 0 else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="server address, host:port")
    parser.add_argument("--topic", required=True, help="topic to use; must not exist yet")
    parser.add_argument("--count", type=int, default=200, help="single-event publishes to time (default 200)")
    parser.add_argument("--proto-dir", type=Path, default=REPO / "proto", help="the .proto files (default: the repo's proto/)")
    args = parser.parse_args()
    if args.count < 0:
        parser.error("--count must not be negative")

    try:
        with tempfile.TemporaryDirectory(prefix="pulsebus-stubs-") as stubs:
            generate_stubs(args.proto_dir.resolve(), Path(stubs))
            sys.path.insert(0, stubs)
            summary = run(args.addr, args.topic, args.count)
    except CheckFailed as failed:
        print(f"client.py: check failed: {failed}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": str(failed)}), flush=True)
        return 1
    except Exception as err:  # an RPC that should have worked, or a setup problem
        print(f"client.py: error: {type(err).__name__}: {err}", file=sys.stderr)
        print(json.dumps({"ok": False, "error": f"{type(err).__name__}: {err}"}), flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
