#!/usr/bin/env python3
"""Consumer throughput of the pulsebus Python client against raw grpcio stubs.

Against the server at $PULSEBUS_URL (default http://127.0.0.1:50051): publishes
--count events (JSON, batches of 500) to a fresh topic, then consumes all of them from
offset 1 with a new exclusive consumer each way, and prints events/s:

  raw       grpcio stubs (the ones the package generated), Subscribe and one awaited
            cumulative Ack per record as it arrives: what a hand-written loop does;
            then the same with up to 64 Acks in flight instead of one;
  iterator  the client's `async for message in consumer: await message.ack()`;
  run       the client's consumer.run(handler) with a handler that returns at once
            (acks coalesced), with --concurrency handlers.

Usage: PULSEBUS_URL=http://127.0.0.1:50051 python bench/throughput.py --count 20000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import pulsebus
from pulsebus import pb
from pulsebus._proto import pb_grpc


async def publish(client: pulsebus.Client, topic: str, count: int) -> float:
    started = time.perf_counter()
    for first in range(0, count, 500):
        batch = [pulsebus.json_event("bench.tick", {"n": n, "pad": "x" * 64})
                 for n in range(first, min(count, first + 500))]
        await client.publish(topic, batch)
    return time.perf_counter() - started


async def raw(url: str, topic: str, count: int) -> float:
    target = url.split("://", 1)[-1]
    async with pulsebus.client.grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.EventBusStub(channel)
        request = pb.SubscribeRequest(topic=topic, consumer="bench-raw")
        request.start.earliest.SetInParent()
        started = time.perf_counter()
        call = stub.Subscribe(request)
        async for response in call:
            if response.WhichOneof("message") != "record":
                continue
            offset = response.record.offset
            await stub.Ack(pb.AckRequest(topic=topic, consumer="bench-raw", offset=offset))
            if offset == count:
                break
        elapsed = time.perf_counter() - started
        call.cancel()
        return elapsed


async def raw_pipelined(url: str, topic: str, count: int, window: int = 64) -> float:
    """Raw stubs again, but the Acks are not awaited one by one: up to `window` in flight."""
    target = url.split("://", 1)[-1]
    async with pulsebus.client.grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.EventBusStub(channel)
        request = pb.SubscribeRequest(topic=topic, consumer="bench-raw-pipelined")
        request.start.earliest.SetInParent()
        slots = asyncio.Semaphore(window)
        pending: set[asyncio.Task[object]] = set()

        async def ack(offset: int) -> None:
            try:
                await stub.Ack(pb.AckRequest(topic=topic, consumer="bench-raw-pipelined", offset=offset))
            finally:
                slots.release()

        started = time.perf_counter()
        call = stub.Subscribe(request)
        async for response in call:
            if response.WhichOneof("message") != "record":
                continue
            offset = response.record.offset
            await slots.acquire()
            task = asyncio.create_task(ack(offset))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if offset == count:
                break
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - started
        call.cancel()
        return elapsed


async def iterate(client: pulsebus.Client, topic: str, count: int) -> float:
    started = time.perf_counter()
    async with client.consumer(topic, "bench-iterator") as consumer:
        async for message in consumer:
            await message.ack()
            if message.offset == count:
                break
        await consumer.flush()
    return time.perf_counter() - started


async def run(client: pulsebus.Client, topic: str, count: int, concurrency: int) -> float:
    shutdown = asyncio.Event()
    handled = 0

    async def handler(message: pulsebus.Message) -> None:
        nonlocal handled
        handled += 1
        if handled == count:
            shutdown.set()

    started = time.perf_counter()
    await client.consumer(topic, "bench-run").run(handler, concurrency=concurrency, shutdown=shutdown)
    elapsed = time.perf_counter() - started  # includes the final ack flush and close
    info = await client.consumer_info(topic, "bench-run")
    assert info is not None and info.committed_offset == count, info
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--url", default=os.environ.get("PULSEBUS_URL", "http://127.0.0.1:50051"))
    args = parser.parse_args()
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    async with pulsebus.connect(args.url) as client:
        seconds = await publish(client, topic, args.count)
        print(f"publish   {args.count} events in batches of 500: {args.count / seconds:9.0f} events/s")
        seconds = await raw(args.url, topic, args.count)
        print(f"raw       grpcio, an awaited Ack per record:    {args.count / seconds:9.0f} events/s")
        seconds = await raw_pipelined(args.url, topic, args.count)
        print(f"raw       grpcio, an Ack per record, 64 at once: {args.count / seconds:8.0f} events/s")
        seconds = await iterate(client, topic, args.count)
        print(f"iterator  async for + message.ack():            {args.count / seconds:9.0f} events/s")
        seconds = await run(client, topic, args.count, args.concurrency)
        print(f"run       run(handler, concurrency={args.concurrency}):          "
              f"{args.count / seconds:9.0f} events/s")


if __name__ == "__main__":
    asyncio.run(main())
