"""StreamPeerTCP round trips against a bare trio stream doing the same exchange.

One echo server (bare trio, in its own process, on its own CPU where there are two) serves
both clients.  Each client, in this process, sends a 64-byte request and waits for the
whole 64-byte echo before sending the next:

* **trionet**: ``await peer.put_data(request)`` then ``await peer.get_data(64)`` on a
  :class:`trionet.StreamPeerTCP` (TCP_NODELAY on, as trio sets it);
* **bare trio**: ``await stream.send_all(request)`` then ``receive_some`` until 64 bytes
  arrived, on a ``trio.SocketStream``.

Rounds are interleaved (the order alternates every round) and the medians over rounds are
reported, with trionet's rate as a fraction of bare trio's (the target is at least 0.8).

Run ``python benchmarks/godot_tcp.py --help`` for the options; ``--quick`` is a smoke test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import trio

import trionet

HOST = "127.0.0.1"
SIZE = 64  # bytes per request and per response

SERVER = r"""
import sys, trio

async def echo(stream):
    try:
        async for data in stream:
            await stream.send_all(data)
    except trio.BrokenResourceError:
        pass

async def main():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    print(listeners[0].socket.getsockname()[1], flush=True)
    await trio.serve_listeners(echo, listeners)

trio.run(main)
"""


async def trionet_round_trips(port: int, duration: float) -> float:
    request = b"r" * SIZE
    async with trionet.StreamPeerTCP() as peer:
        assert peer.connect_to_host(HOST, port) == trionet.Error.OK
        while peer.get_status() == peer.STATUS_CONNECTING:
            await peer.wait()
            peer.poll()
        peer.set_no_delay(True)
        count = 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            for _ in range(100):
                await peer.put_data(request)
                error, data = await peer.get_data(SIZE)
                assert error == trionet.Error.OK
                assert len(data) == SIZE
            count += 100
        return count / duration


async def trio_round_trips(port: int, duration: float) -> float:
    request = b"r" * SIZE
    stream = await trio.open_tcp_stream(HOST, port)
    async with stream:
        count = 0
        end = time.perf_counter() + duration
        while time.perf_counter() < end:
            for _ in range(100):
                await stream.send_all(request)
                got = 0
                while got < SIZE:
                    got += len(await stream.receive_some(SIZE - got))
            count += 100
        return count / duration


CLIENTS: dict[str, Callable[[int, float], Awaitable[float]]] = {
    "trionet StreamPeerTCP": trionet_round_trips,
    "bare trio": trio_round_trips,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--duration", type=float, default=1.0, help="seconds per sample")
    parser.add_argument("--quick", action="store_true", help="2 short rounds (smoke test)")
    args = parser.parse_args()
    rounds, duration = (2, 0.2) if args.quick else (args.rounds, args.duration)

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cmd = [sys.executable, "-c", SERVER]
    if len(cpus) >= 2 and sys.platform == "linux":
        server_cmd = ["taskset", "-c", str(cpus[1]), *server_cmd]
        os.sched_setaffinity(0, {cpus[0]})
    server = subprocess.Popen(server_cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        rates: dict[str, list[float]] = {name: [] for name in CLIENTS}
        names = list(CLIENTS)
        for number in range(rounds):
            order = names if number % 2 == 0 else names[::-1]
            for name in order:
                trio.run(CLIENTS[name], port, duration / 4)  # warm-up
                rates[name].append(trio.run(CLIENTS[name], port, duration))
        medians = {name: statistics.median(values) for name, values in rates.items()}
        print(f"round trips per second ({SIZE}-byte request and response, median of {rounds})")
        for name, rate in medians.items():
            print(f"  {name:<22} {rate:>10,.0f}")
        ratio = medians["trionet StreamPeerTCP"] / medians["bare trio"]
        print(f"  ratio trionet / bare trio: {ratio:.2f} (target >= 0.80)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
