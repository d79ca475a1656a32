"""Attaches N durable subscribers to an idle topic and holds them for some seconds.

Usage: lease_renewals.py HOST:PORT N SECONDS (run by lease_renewals.sh).
"""
import asyncio
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import client as c

async def main(addr, n, hold, per_channel=500):
    import grpc
    from pulsebus.v1 import pulsebus_pb2 as pb, pulsebus_pb2_grpc as rpc
    channels = [grpc.aio.insecure_channel(addr) for _ in range((n + per_channel - 1) // per_channel)]
    calls = []
    for i in range(n):
        stub = rpc.EventBusStub(channels[i // per_channel])
        calls.append(stub.Subscribe(pb.SubscribeRequest(topic="leases", consumer=f"c{i}")))
    async def drain(call):
        try:
            async for _ in call:
                pass
        except Exception:
            pass
    tasks = [asyncio.create_task(drain(x)) for x in calls]
    print("attached", n, flush=True)
    await asyncio.sleep(hold)
    for x in calls:
        x.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

with tempfile.TemporaryDirectory() as stubs:
    c.generate_stubs(REPO / "proto", Path(stubs))
    sys.path.insert(0, stubs)
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
