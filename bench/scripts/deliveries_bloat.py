"""Drains a shared consumer with three subscribers that ack every record (acks batched
per 50 offsets) while a publisher adds events at a fixed rate, and prints the records
handled in each 10 s interval.

Usage: deliveries_bloat.py HOST:PORT BACKLOG RATE SECONDS (run by deliveries_bloat.sh).
"""
import asyncio
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import client as c


async def main(addr, backlog, rate, seconds):
    import grpc
    from pulsebus.v1 import pulsebus_pb2 as pb, pulsebus_pb2_grpc as rpc

    channel = grpc.aio.insecure_channel(addr)
    bus = rpc.EventBusStub(channel)

    def event():
        return pb.Event(type="job", content_type="application/json", text_data='{"n": 1}')

    for _ in range(backlog // 500):
        await bus.Publish(pb.PublishRequest(topic="jobs", events=[event() for _ in range(500)]))
    config = pb.ConsumerConfig(mode=pb.DELIVERY_MODE_SHARED)
    config.ack_deadline.seconds = 600
    handled = [0]

    async def worker():
        call = bus.Subscribe(pb.SubscribeRequest(topic="jobs", consumer="workers",
                                                 max_in_flight=200, config=config))
        pending = []
        async for message in call:
            if message.WhichOneof("message") != "record":
                continue
            pending.append(message.record.offset)
            if len(pending) >= 50:
                await bus.Ack(pb.AckRequest(topic="jobs", consumer="workers", offsets=pending))
                handled[0] += len(pending)
                pending = []

    async def publisher():
        while True:
            await bus.Publish(pb.PublishRequest(topic="jobs", events=[event() for _ in range(rate // 10)]))
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(worker()) for _ in range(3)]
    tasks.append(asyncio.create_task(publisher()))
    start = time.monotonic()
    last = 0
    while time.monotonic() - start < seconds:
        await asyncio.sleep(10)
        now = handled[0]
        print(f"t={time.monotonic() - start:5.0f}s handled/s={(now - last) / 10:7.0f}", flush=True)
        last = now
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


with tempfile.TemporaryDirectory() as stubs:
    c.generate_stubs(REPO / "proto", Path(stubs))
    sys.path.insert(0, stubs)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
