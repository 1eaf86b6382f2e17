"""Async testbench helpers for ``lib.stream`` ports under the Amaranth simulator.

:func:`stream_put` and :func:`stream_get` transfer one payload; :func:`put_all` and
:func:`get_all` transfer many with seeded random idle cycles (stalls) between transfers, so every
fast test exercises back-pressure the same way the cocotb runs do.
"""

import random

__all__ = ["stream_put", "stream_get", "put_all", "get_all"]


async def stream_put(ctx, stream, payload):
    """Offer ``payload`` on ``stream`` until the component takes it."""
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream):
    """Wait for one payload on ``stream`` and return it (a value, or a ``data.Const`` view)."""
    ctx.set(stream.ready, 1)
    payload, = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


async def _stall(ctx, rng, stall):
    while rng.random() < stall:
        await ctx.tick()


async def put_all(ctx, stream, payloads, rng=None, stall=0.0):
    """Put every payload of ``payloads``, idling a cycle with probability ``stall`` before each."""
    rng = rng or random.Random(0)
    for payload in payloads:
        await _stall(ctx, rng, stall)
        await stream_put(ctx, stream, payload)


async def get_all(ctx, stream, count, rng=None, stall=0.0):
    """Get ``count`` payloads, dropping ``ready`` for a cycle with probability ``stall`` before each."""
    rng = rng or random.Random(1)
    received = []
    for _ in range(count):
        await _stall(ctx, rng, stall)
        received.append(await stream_get(ctx, stream))
    return received
