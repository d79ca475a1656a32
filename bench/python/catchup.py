#!/usr/bin/env python3
"""The harness's Python grpcio catch-up reader (`pulsebus-bench catchup
--catchup-python PYTHON`): one durable pulsebus consumer replays a topic from the start
with raw grpcio stubs (no client library), as a hand-written Python service would,
acking cumulatively every --ack-every records without waiting for the acks.

Stubs are generated from --proto-dir with grpcio-tools into a temporary directory
before the clock starts. Prints one JSON line: events, messages (records and batches
received), acks, seconds (from Subscribe to the last record) and cpu_seconds (this
process, the same span).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path


def stubs(proto_dir: Path, out: Path):
    import grpc_tools
    from grpc_tools import protoc

    includes = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{proto_dir}", f"-I{includes}", f"--python_out={out}",
            f"--grpc_python_out={out}", str(proto_dir / "pulsebus/v1/pulsebus.proto")]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {proto_dir}")
    sys.path.insert(0, str(out))
    return (importlib.import_module("pulsebus.v1.pulsebus_pb2"),
            importlib.import_module("pulsebus.v1.pulsebus_pb2_grpc"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="host:port of the server")
    parser.add_argument("--proto-dir", required=True, type=Path)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--consumer", required=True)
    parser.add_argument("--events", required=True, type=int)
    parser.add_argument("--ack-every", type=int, default=1000)
    parser.add_argument("--max-in-flight", type=int, default=4000)
    parser.add_argument("--batch-records", type=int, default=0)
    args = parser.parse_args()

    import grpc

    with tempfile.TemporaryDirectory(prefix="pulsebus-bench-py-") as gen:
        pb, pb_grpc = stubs(args.proto_dir, Path(gen))
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        with grpc.insecure_channel(args.target, options=options) as channel:
            stub = pb_grpc.EventBusStub(channel)
            request = pb.SubscribeRequest(topic=args.topic, consumer=args.consumer,
                                          max_in_flight=args.max_in_flight,
                                          batch_records=args.batch_records)
            request.start.earliest.SetInParent()
            cpu0, started = time.process_time(), time.perf_counter()
            call = stub.Subscribe(request)
            got = messages = 0
            acks = []
            for response in call:
                kind = response.WhichOneof("message")
                if kind == "batch":
                    records = response.batch.records
                elif kind == "record":
                    records = (response.record,)
                else:
                    continue
                messages += 1
                for record in records:
                    got += 1
                    if got % args.ack_every == 0 or got == args.events:
                        ack = pb.AckRequest(topic=args.topic, consumer=args.consumer,
                                            offset=record.offset)
                        acks.append(stub.Ack.future(ack))
                if got >= args.events:
                    break
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
            for ack in acks:
                ack.result()
            call.cancel()
    if got < args.events:
        raise SystemExit(f"the stream ended after {got} of {args.events} events")
    print(json.dumps({"events": got, "messages": messages, "acks": len(acks),
                      "seconds": seconds, "cpu_seconds": cpu}), flush=True)


if __name__ == "__main__":
    main()
