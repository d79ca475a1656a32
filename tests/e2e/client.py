#!/usr/bin/env python3
"""End-to-end check of pulsebus from Python grpcio, the way an EduPulse service uses it.

Generates stubs from the repository's proto/ into a temporary directory, then runs one
scenario against a running server.

--scenario publish (the default):

1. publishes a batch of 3 EduPulse events with explicit ids (a protobuf Any packing a
   QuizSubmitted, a JSON text payload, a binary payload) and expects offsets 1..3;
2. publishes one of them again and expects duplicate=True with its original offset;
3. reads the topic back and checks ids, types, payloads and offsets;
4. sends an event without a type and expects INVALID_ARGUMENT naming events[0].type;
5. times --count single-event publishes.

Prints one JSON line to stdout: {"ok": true, "publishes": N, "seconds": s, "per_second": r}.

--scenario consumer, a durable consumer that crashes and comes back:

1. publishes 10 events;
2. subscribes as consumer "py-consumer", reads offsets 1..5 (skipping heartbeats), acks
   5 and cancels the stream;
3. subscribes again as "py-consumer" and expects to resume at offset 6 (the standby
   subscription takes over once the server released the first one's lease), reads
   through 10, acks 10, and waits for an idle heartbeat that reports committed offset 10
   and head 10 (no record may come before it);
4. expects ListConsumers to show py-consumer attached with committed offset 10, lag 0;
5. acks with an empty consumer and expects FAILED_PRECONDITION.

Prints one JSON line to stdout: {"ok": true, "scenario": "consumer", "first": [...],
"second": [...], "committed": 10, "lag": 0, "heartbeats": n}.

On a failed check either scenario prints {"ok": false, "error": ...} and the reason on
stderr, and exits 1.

Usage: client.py --addr 127.0.0.1:50051 --topic e2e-python [--count 200]
       client.py --addr 127.0.0.1:50051 --topic e2e-consumer --scenario consumer
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
# Deadline of a Subscribe stream, in seconds: the whole time it may stay open, standby
# included.
STREAM_DEADLINE = 20.0
# The durable consumer of the consumer scenario.
CONSUMER = "py-consumer"
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


def connect(addr: str):
    """An open channel to addr and an EventBus stub on it."""
    import grpc

    from pulsebus.v1 import pulsebus_pb2_grpc

    channel = grpc.insecure_channel(addr)
    try:
        grpc.channel_ready_future(channel).result(timeout=DEADLINE)
    except grpc.FutureTimeoutError:
        raise CheckFailed(f"cannot connect to {addr} within {DEADLINE}s") from None
    return channel, pulsebus_pb2_grpc.EventBusStub(channel)


def run(addr: str, topic: str, count: int) -> dict:
    import grpc
    from google.protobuf import any_pb2, timestamp_pb2

    from edupulse.events.v1 import events_pb2
    from pulsebus.v1 import pulsebus_pb2 as pb

    channel, bus = connect(addr)

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


def run_consumer(addr: str, topic: str) -> dict:
    import grpc

    from pulsebus.v1 import pulsebus_pb2 as pb

    channel, bus = connect(addr)
    heartbeats = 0
    # State messages seen, by kind; the latest seek epoch (from attached/repositioned).
    states = {}
    epoch = None

    def note_state(kind: str, message) -> bool:
        """Counts a stream state message; False when `kind` is not one."""
        nonlocal epoch
        if kind not in ("attached", "standby", "caught_up", "repositioned"):
            return False
        states[kind] = states.get(kind, 0) + 1
        if kind in ("attached", "repositioned"):
            epoch = getattr(message, kind).seek_epoch
        return True

    def read_records(call, n: int, what: str) -> list:
        """The next n records of a Subscribe call, skipping heartbeats and states."""
        nonlocal heartbeats
        records = []
        try:
            for message in call:
                kind = message.WhichOneof("message")
                if kind == "heartbeat":
                    heartbeats += 1
                    continue
                if note_state(kind, message):
                    continue
                check(kind == "record", f"{what}: a message that is neither record, heartbeat nor state: {message}")
                records.append(message.record)
                if len(records) == n:
                    return records
        except grpc.RpcError as err:
            got = [r.offset for r in records]
            raise CheckFailed(f"{what}: stream failed after offsets {got}: {err.code()} {err.details()!r}") from None
        raise CheckFailed(f"{what}: stream ended after offsets {[r.offset for r in records]}, want {n} records")

    def await_heartbeat(call, committed: int, what: str):
        """The first heartbeat reporting `committed`; no record may come before it."""
        nonlocal heartbeats
        try:
            for message in call:
                kind = message.WhichOneof("message")
                if note_state(kind, message):
                    continue
                check(kind == "heartbeat", f"{what}: got a {kind} while waiting for a heartbeat: {message}")
                heartbeats += 1
                if message.heartbeat.committed_offset == committed:
                    return message.heartbeat
        except grpc.RpcError as err:
            raise CheckFailed(f"{what}: stream failed waiting for a heartbeat: {err.code()} {err.details()!r}") from None
        raise CheckFailed(f"{what}: stream ended waiting for a heartbeat")

    def check_records(records: list, first: int, what: str) -> list:
        offsets = [r.offset for r in records]
        want = list(range(first, first + len(records)))
        check(offsets == want, f"{what}: offsets {offsets}, want {want}")
        for r in records:
            check(r.topic == topic, f"{what}: offset {r.offset}: topic {r.topic!r}")
            check(r.event.type == "attendance.marked", f"{what}: offset {r.offset}: type {r.event.type!r}")
            check(json.loads(r.event.text_data) == {"seq": r.offset}, f"{what}: offset {r.offset}: payload {r.event.text_data!r}")
        return offsets

    def ack(consumer: str, offset: int) -> int:
        request = pb.AckRequest(topic=topic, consumer=consumer, offset=offset, seek_epoch=epoch)
        return bus.Ack(request, timeout=DEADLINE).committed_offset

    def subscribe():
        request = pb.SubscribeRequest(topic=topic, consumer=CONSUMER)
        return bus.Subscribe(request, timeout=STREAM_DEADLINE)

    # 1. Ten events, payload {"seq": offset}.
    events = [
        pb.Event(
            type="attendance.marked",
            source="e2e-python",
            content_type="application/json",
            text_data=json.dumps({"seq": seq}),
        )
        for seq in range(1, 11)
    ]
    results = bus.Publish(pb.PublishRequest(topic=topic, events=events), timeout=DEADLINE).results
    offsets = [r.offset for r in results]
    check(offsets == list(range(1, 11)), f"publish: offsets {offsets}, want 1..10")

    # 2. The first subscriber handles 1..5, acks them and goes away.
    call = subscribe()
    first = check_records(read_records(call, 5, "first subscription"), 1, "first subscription")
    committed = ack(CONSUMER, 5)
    check(committed == 5, f"ack 5: committed_offset {committed}, want 5")
    call.cancel()
    check(call.code() == grpc.StatusCode.CANCELLED, f"first subscription after cancel: code {call.code()}")

    # 3. The same consumer resumes right after its committed offset.
    call = subscribe()
    try:
        second = check_records(read_records(call, 5, "second subscription"), 6, "second subscription")
        committed = ack(CONSUMER, 10)
        check(committed == 10, f"ack 10: committed_offset {committed}, want 10")
        # Caught up: the idle stream heartbeats, soon with the new committed offset.
        beat = await_heartbeat(call, 10, "second subscription")
        check(beat.head_offset == 10, f"heartbeat: head_offset {beat.head_offset}, want 10")

        # 4. The consumer's position, while its subscriber is still attached.
        listed = bus.ListConsumers(pb.ListConsumersRequest(topic=topic), timeout=DEADLINE).consumers
        names = [c.name for c in listed]
        check(names == [CONSUMER], f"list consumers: names {names}, want [{CONSUMER!r}]")
        info = listed[0]
        check(info.topic == topic, f"list consumers: topic {info.topic!r}, want {topic!r}")
        check(info.committed_offset == 10, f"list consumers: committed_offset {info.committed_offset}, want 10")
        check(info.lag == 0, f"list consumers: lag {info.lag}, want 0")
        check(info.attached, "list consumers: attached=False while the second subscription is open")
    finally:
        call.cancel()

    # 5. An ephemeral subscriber has no offset to ack.
    try:
        ack("", 1)
    except grpc.RpcError as err:
        check(
            err.code() == grpc.StatusCode.FAILED_PRECONDITION,
            f"ack without consumer: code {err.code()}, want FAILED_PRECONDITION ({err.details()})",
        )
    else:
        raise CheckFailed("ack without consumer: succeeded, want FAILED_PRECONDITION")

    channel.close()
    return {
        "ok": True,
        "scenario": "consumer",
        "first": first,
        "second": second,
        "committed": info.committed_offset,
        "lag": info.lag,
        "heartbeats": heartbeats,
        "states": states,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", required=True, help="server address, host:port")
    parser.add_argument("--topic", required=True, help="topic to use; must not exist yet")
    parser.add_argument("--scenario", choices=["publish", "consumer"], default="publish", help="what to check (default publish)")
    parser.add_argument("--count", type=int, default=200, help="publish scenario: single-event publishes to time (default 200)")
    parser.add_argument("--proto-dir", type=Path, default=REPO / "proto", help="the .proto files (default: the repo's proto/)")
    args = parser.parse_args()
    if args.count < 0:
        parser.error("--count must not be negative")

    try:
        with tempfile.TemporaryDirectory(prefix="pulsebus-stubs-") as stubs:
            generate_stubs(args.proto_dir.resolve(), Path(stubs))
            sys.path.insert(0, stubs)
            if args.scenario == "consumer":
                summary = run_consumer(args.addr, args.topic)
            else:
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
