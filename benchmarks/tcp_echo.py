"""TCP echo benchmark: trionet against bare trio and asyncio, each server in its own process.

Two workloads, both over 127.0.0.1:

* **throughput**: one connection; the client writes 64 KiB chunks and reads the echo back,
  with at most :data:`WINDOW` bytes outstanding.  Reported in MB/s (10**6 bytes) of echoed
  data.
* **round trips**: :data:`RT_CONNECTIONS` connections, each sending a 64-byte request and
  waiting for the whole 64-byte echo before sending the next.  Reported in round trips per
  second, all connections together.

The load client is one process and one thread: plain non-blocking sockets driven by
:mod:`selectors`, doing as little Python per message as it can.  Its CPU use during the
measurement is reported (as is the server's), so that a saturated client shows, and so is
the CPU the rest of the machine used: a sample disturbed by other work is measured again
after waiting for the machine to go quiet (both bounded), and flagged if it stays so.

Rounds are interleaved: every round starts each server afresh (in a rotated order), warms
it up, measures both workloads and stops it.  The tables show the median over rounds of
the rates and of the server's CPU time per unit of work.

Run ``python benchmarks/tcp_echo.py --help`` for the options; ``--quick`` is a smoke test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from servers import HOST, SERVERS

SERVER_SCRIPT = Path(__file__).with_name("servers.py")
BASELINE = "trio-bare"

CHUNK = 64 * 1024  # bytes per send() of the throughput client
WINDOW = 8 * CHUNK  # most bytes the throughput client has in flight
PATTERN_PERIOD = 251  # the throughput payload repeats with this (prime) period
CHECK_BYTES = 16  # how many bytes of every received block the throughput client checks
RT_CONNECTIONS = 50  # concurrent connections of the round-trip workload
RT_SIZE = 64  # bytes per round-trip request (and response)

READY_TIMEOUT = 20.0  # seconds for a server to start and print READY
CONNECT_TIMEOUT = 5.0  # seconds for each client connection to be established
STALL_TIMEOUT = 5.0  # seconds without any echoed byte before giving up on a server
DRAIN_TIMEOUT = 5.0  # seconds for the outstanding echo to arrive after the measurement
STOP_TIMEOUT = 5.0  # seconds for a server to exit after SIGTERM (then after SIGKILL)
POLL_INTERVAL = 0.05  # longest single wait in the client loops, so deadlines are checked
DISTURBED_CPU = 15.0  # other CPU use (% of a core) past which a sample counts as disturbed


class BenchmarkError(Exception):
    """A server misbehaved: it failed to start, stalled, closed early or echoed wrong bytes."""


# -- CPU accounting ----------------------------------------------------------------------


def _own_cpu_seconds() -> float:
    """User + system CPU seconds used by this (single-threaded) process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used by process ``pid``, or ``None`` without ``/proc``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def _machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs spent busy (not idle or waiting for I/O) since boot."""
    try:
        with open("/proc/stat") as stat:
            fields = stat.readline().split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLOCK_TICKS


def _minus(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


@dataclass
class _Window:
    """Counters sampled at the start and at the end of the measurement window."""

    server_pid: int
    start: float = 0.0
    count: int = 0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    machine_busy: float | None = None

    def open(self, now: float, count: int) -> None:
        self.start, self.count = now, count
        self.client_cpu = _own_cpu_seconds()
        self.server_cpu = _process_cpu_seconds(self.server_pid)
        self.machine_busy = _machine_busy_seconds()

    def close(self, now: float, count: int) -> Sample:
        elapsed = now - self.start
        client = _own_cpu_seconds() - self.client_cpu
        server = _minus(_process_cpu_seconds(self.server_pid), self.server_cpu)
        busy = _minus(_machine_busy_seconds(), self.machine_busy)
        other = None if busy is None or server is None else max(0.0, busy - client - server)
        return Sample(
            rate=(count - self.count) / elapsed,
            client_cpu=100.0 * client / elapsed,
            server_cpu=None if server is None else 100.0 * server / elapsed,
            other_cpu=None if other is None else 100.0 * other / elapsed,
        )


@dataclass(frozen=True)
class Sample:
    """One measurement: a rate (bytes or round trips per second) and CPU use in percent.

    ``other_cpu`` is what the rest of the machine used meanwhile (other processes, and
    kernel work not charged to either process); much of it means the figures are disturbed.
    """

    rate: float
    client_cpu: float
    server_cpu: float | None
    other_cpu: float | None = None

    @property
    def server_cost(self) -> float | None:
        """Server CPU seconds per unit of rate (per byte, or per round trip)."""
        if self.server_cpu is None or not self.rate:
            return None
        return self.server_cpu / 100.0 / self.rate


# -- server processes --------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A running echo server: its process and the port it listens on."""

    name: str
    process: subprocess.Popen[bytes]
    port: int


def _read_ready_line(process: subprocess.Popen[bytes], deadline: float) -> int:
    """Read the server's stdout until ``READY <port>``, by ``deadline``; return the port."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchmarkError(f"no READY line within {READY_TIMEOUT:g} s")
            if not selector.select(min(remaining, POLL_INTERVAL * 10)):
                continue
            data = os.read(fd, 4096)
            if not data:
                raise BenchmarkError(f"server exited with status {process.wait(STOP_TIMEOUT)}")
            buffer += data
    line = buffer.split(b"\n", 1)[0].decode(errors="replace").strip()
    word, _, port = line.partition(" ")
    if word != "READY" or not port.isdigit():
        raise BenchmarkError(f"unexpected first line from server: {line!r}")
    return int(port)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, wait; SIGKILL if it does not exit in time.  Bounded."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)


def _tail(stream: IO[bytes], limit: int = 2000) -> str:
    stream.seek(0)
    text = stream.read().decode(errors="replace")
    return text[-limit:].strip()


@contextlib.contextmanager
def running_server(
    name: str, *, cpu: int | None = None, profile: Path | None = None
) -> Iterator[ServerProcess]:
    """Start server ``name`` in a subprocess; stop it when the block ends, however it ends.

    Raises:
        BenchmarkError: the server did not report its port in time, or the block failed
            with it (the message then ends with the server's stderr).
    """
    command = [sys.executable, str(SERVER_SCRIPT), name]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    if profile is not None:
        command += ["--profile", str(profile)]
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        try:
            port = _read_ready_line(process, time.monotonic() + READY_TIMEOUT)
            yield ServerProcess(name, process, port)
        except (BenchmarkError, OSError) as exc:
            _stop(process)
            output = _tail(stderr)
            raise BenchmarkError(f"{name}: {exc}" + (f"\n{output}" if output else "")) from exc
        finally:
            _stop(process)
            assert process.stdout is not None
            process.stdout.close()


def _connect(port: int) -> socket.socket:
    """A non-blocking, TCP_NODELAY client socket connected to the server on ``port``."""
    sock = socket.create_connection((HOST, port), timeout=CONNECT_TIMEOUT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


# -- throughput --------------------------------------------------------------------------


def measure_throughput(server: ServerProcess, warmup: float, duration: float) -> Sample:
    """One connection streaming 64 KiB chunks through the echo; the rate is in bytes/s.

    The payload repeats with a prime period, so the first bytes of every received block
    can be checked against their stream offset (a lost, duplicated or reordered block
    shows); by the end every sent byte must have come back.

    Raises:
        BenchmarkError: the server stalled, closed the connection or echoed wrong data.
    """
    pattern = bytes(range(PATTERN_PERIOD))
    source = memoryview(pattern * (CHUNK // PATTERN_PERIOD + 2))
    buffer = bytearray(WINDOW)
    sent = received = 0
    with _connect(server.port) as sock, selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        send, recv_into = sock.send, sock.recv_into
        window = _Window(server.process.pid)
        start = time.perf_counter()
        measure_at, stop_at = start + warmup, start + warmup + duration
        measuring = False
        want_write = False  # registered for EVENT_WRITE after the kernel refused a send
        last_progress = start
        while True:
            now = time.perf_counter()
            if not measuring and now >= measure_at:
                window.open(now, received)
                measuring = True
            elif measuring and now >= stop_at:
                sample = window.close(now, received)
                break
            if now - last_progress > STALL_TIMEOUT:
                raise BenchmarkError(f"throughput: no echo for {STALL_TIMEOUT:g} s")
            if not want_write and sent - received <= WINDOW - CHUNK:
                offset = sent % PATTERN_PERIOD
                try:
                    sent += send(source[offset : offset + CHUNK])
                except BlockingIOError:
                    want_write = True
                    selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
                continue
            for _key, mask in selector.select(POLL_INTERVAL):
                if mask & selectors.EVENT_WRITE:
                    want_write = False
                    selector.modify(sock, selectors.EVENT_READ)
                if mask & selectors.EVENT_READ:
                    received = _receive_block(recv_into, buffer, source, received)
                    last_progress = now
        # Stop sending; everything in flight must come back.
        deadline = time.perf_counter() + DRAIN_TIMEOUT
        while received < sent:
            if time.perf_counter() > deadline:
                raise BenchmarkError(
                    f"throughput: {sent - received} of {sent} bytes not echoed "
                    f"within {DRAIN_TIMEOUT:g} s"
                )
            if selector.select(POLL_INTERVAL):
                received = _receive_block(recv_into, buffer, source, received)
        if received != sent:  # pragma: no cover - only a server echoing extra bytes
            raise BenchmarkError(f"throughput: sent {sent} bytes, received {received}")
    return sample


def _receive_block(
    recv_into: Callable[[bytearray], int], buffer: bytearray, source: memoryview, received: int
) -> int:
    """Receive one block, check its first bytes against the stream offset; new total."""
    count = recv_into(buffer)
    if not count:
        raise BenchmarkError(f"throughput: server closed the connection after {received} bytes")
    offset = received % PATTERN_PERIOD
    checked = min(count, CHECK_BYTES)
    if buffer[:checked] != source[offset : offset + checked]:
        raise BenchmarkError(f"throughput: wrong bytes echoed at offset {received}")
    return received + count


# -- round trips -------------------------------------------------------------------------


class _Exchange:
    """One round-trip connection: the request in flight and what has come back of it."""

    __slots__ = ("head", "partial", "request", "sequence", "sock", "unsent")

    def __init__(self, sock: socket.socket, index: int) -> None:
        self.sock = sock
        self.head = f"connection {index:4d} request ".encode()  # 8 bytes follow
        self.head += b"." * (RT_SIZE - 8 - len(self.head))
        self.sequence = 0
        self.request = b""
        self.partial = b""  # the response so far, when it arrived in pieces
        self.unsent = b""  # the end of the request the kernel did not take yet

    def next_request(self) -> bytes:
        self.sequence += 1
        self.request = self.head + self.sequence.to_bytes(8, "big")
        return self.request


def measure_round_trips(server: ServerProcess, warmup: float, duration: float) -> Sample:
    """:data:`RT_CONNECTIONS` connections doing request, full response, next request.

    Every response must equal its request, which carries the connection and a counter.
    The rate is in round trips per second, over all connections.

    Raises:
        BenchmarkError: the server stalled, closed a connection or echoed wrong data.
    """
    selector = selectors.DefaultSelector()
    exchanges: list[_Exchange] = []
    try:
        for index in range(RT_CONNECTIONS):
            exchange = _Exchange(_connect(server.port), index)
            exchanges.append(exchange)
            selector.register(exchange.sock, selectors.EVENT_READ, exchange)
        return _drive_round_trips(server, selector, exchanges, warmup, duration)
    finally:
        selector.close()
        for exchange in exchanges:
            exchange.sock.close()


def _drive_round_trips(
    server: ServerProcess,
    selector: selectors.BaseSelector,
    exchanges: list[_Exchange],
    warmup: float,
    duration: float,
) -> Sample:
    read, read_write = selectors.EVENT_READ, selectors.EVENT_READ | selectors.EVENT_WRITE
    completed = 0
    in_flight = 0

    def send(exchange: _Exchange, data: bytes) -> None:
        sent = exchange.sock.send(data)
        if sent < len(data):  # never seen with 64 bytes, but handled
            exchange.unsent = data[sent:]
            selector.modify(exchange.sock, read_write, exchange)

    for exchange in exchanges:
        send(exchange, exchange.next_request())
        in_flight += 1
    window = _Window(server.process.pid)
    start = time.perf_counter()
    measure_at, stop_at = start + warmup, start + warmup + duration
    measuring = False
    sample: Sample | None = None
    last_progress = start
    while in_flight:
        now = time.perf_counter()
        if sample is None:
            if not measuring and now >= measure_at:
                window.open(now, completed)
                measuring = True
            elif measuring and now >= stop_at:
                # Measured; stop issuing requests and collect the ones in flight.
                sample = window.close(now, completed)
                last_progress = now
        if now - last_progress > (STALL_TIMEOUT if sample is None else DRAIN_TIMEOUT):
            raise BenchmarkError(f"round trips: {in_flight} responses missing for too long")
        for key, mask in selector.select(POLL_INTERVAL):
            exchange = key.data
            if mask & selectors.EVENT_WRITE:
                data, exchange.unsent = exchange.unsent, b""
                selector.modify(exchange.sock, read, exchange)
                send(exchange, data)
            if not mask & selectors.EVENT_READ:
                continue
            response = exchange.sock.recv(RT_SIZE - len(exchange.partial))
            if not response:
                raise BenchmarkError("round trips: server closed a connection")
            if exchange.partial or len(response) < RT_SIZE:
                exchange.partial += response
                if len(exchange.partial) < RT_SIZE:
                    continue
                response, exchange.partial = exchange.partial, b""
            if response != exchange.request:
                raise BenchmarkError(
                    f"round trips: expected {exchange.request!r}, got {response!r}"
                )
            completed += 1
            last_progress = now
            if sample is None:
                send(exchange, exchange.next_request())
            else:
                in_flight -= 1
    assert sample is not None
    return sample


# -- the benchmark -----------------------------------------------------------------------

WORKLOADS: dict[str, Callable[[ServerProcess, float, float], Sample]] = {
    "throughput": measure_throughput,
    "round_trips": measure_round_trips,
}


@dataclass
class Series:
    """Every round's sample of one server under one workload (or the failures)."""

    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def median(self, attribute: str = "rate") -> float | None:
        """Median of ``attribute`` over the samples that have it; ``None`` if none do."""
        values = [getattr(s, attribute) for s in self.samples]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None


Results = dict[str, dict[str, Series]]


def _cpu_layout(pin: bool) -> tuple[int | None, int | None]:
    """CPUs for (client, server): two different ones when pinning is possible."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


@dataclass(frozen=True)
class Settings:
    """How each measurement is taken."""

    warmup: float  # seconds of load before the measurement window opens
    duration: float  # seconds the window stays open
    retries: int  # extra attempts for a sample disturbed by other CPU use
    quiet_wait: float  # longest wait for the machine to be quiet before a measurement
    pin: bool  # pin client and server to different CPUs when there are two


def run_benchmark(
    servers: Sequence[str],
    workloads: Sequence[str],
    *,
    rounds: int,
    settings: Settings,
    log: Callable[[str], None],
) -> Results:
    """Run every round: each server afresh (in a rotated order), every workload against it.

    A server that fails is recorded as a failure of that round and the run goes on.
    """
    results: Results = {name: {w: Series() for w in workloads} for name in servers}
    client_cpu, server_cpu = _cpu_layout(settings.pin)
    saved_affinity = os.sched_getaffinity(0) if client_cpu is not None else None
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    try:
        for round_index in range(rounds):
            shift = round_index % len(servers)
            for name in [*servers[shift:], *servers[:shift]]:
                label = f"round {round_index + 1} {name:17}"
                _run_one(name, workloads, results[name], settings, server_cpu, label, log)
    finally:
        if saved_affinity is not None:
            os.sched_setaffinity(0, saved_affinity)
    return results


def _run_one(
    name: str,
    workloads: Sequence[str],
    series: dict[str, Series],
    settings: Settings,
    server_cpu: int | None,
    label: str,
    log: Callable[[str], None],
) -> None:
    """Start server ``name`` once and measure every workload against it."""
    done: set[str] = set()
    try:
        with running_server(name, cpu=server_cpu) as server:
            for workload in workloads:
                series[workload].samples.append(
                    _measure(server, workload, settings, lambda text: log(f"{label} {text}"))
                )
                done.add(workload)
    except (BenchmarkError, OSError) as exc:
        log(f"{label} FAILED: {exc}")
        for workload in workloads:
            if workload not in done:
                series[workload].failures.append(f"{' '.join(label.split())}: {exc}")


def wait_for_quiet(limit: float, *, window: float = 0.25) -> bool:
    """Wait until the machine's CPU use stays under :data:`DISTURBED_CPU` for ``window``.

    Call it while no load runs (the server idles between workloads).  Returns whether it
    went quiet within ``limit`` seconds; without ``/proc/stat`` it returns at once.
    """
    deadline = time.monotonic() + limit
    while True:
        before = _machine_busy_seconds()
        if before is None:
            return True
        time.sleep(window)
        after = _machine_busy_seconds()
        if after is not None and 100.0 * (after - before) / window <= DISTURBED_CPU:
            return True
        if time.monotonic() >= deadline:
            return False


def _measure(
    server: ServerProcess, workload: str, settings: Settings, log: Callable[[str], None]
) -> Sample:
    """Measure ``workload``; again (bounded) while other CPU use disturbs it.

    Each attempt first waits (at most ``settings.quiet_wait`` seconds) for the rest of the
    machine to go quiet.  Returns the least disturbed of the attempts.
    """
    attempts: list[Sample] = []
    for _ in range(settings.retries + 1):
        if settings.quiet_wait > 0 and not wait_for_quiet(settings.quiet_wait):
            log(f"{workload:11} the machine stayed busy for {settings.quiet_wait:g} s; measuring")
        sample = WORKLOADS[workload](server, settings.warmup, settings.duration)
        log(f"{workload:11} {_describe(workload, sample)}")
        attempts.append(sample)
        if sample.other_cpu is None or sample.other_cpu <= DISTURBED_CPU:
            break
        if len(attempts) <= settings.retries:
            log(f"{workload:11} disturbed by other CPU use; measuring again")
    return min(attempts, key=lambda s: s.other_cpu or 0.0)


def _describe(workload: str, sample: Sample) -> str:
    rate = (
        f"{sample.rate / 1e6:9.1f} MB/s" if workload == "throughput" else f"{sample.rate:9.0f} rt/s"
    )
    server = "?" if sample.server_cpu is None else f"{sample.server_cpu:.0f}%"
    other = "?" if sample.other_cpu is None else f"{sample.other_cpu:.0f}%"
    return f"{rate}  client CPU {sample.client_cpu:.0f}%  server CPU {server}  other {other}"


# -- reporting ---------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ratio(value: float | None, base: float | None) -> float | None:
    return None if value is None or not base else value / base


def markdown_table(results: Results, workloads: Sequence[str]) -> str:
    """The results as a Markdown table: medians, ranges, ratios to trio-bare, CPU use."""
    base = results.get(BASELINE, {})
    columns = {
        "throughput": ("MB/s", 1e6),
        "round_trips": ("rt/s", 1.0),
    }
    header, align = ["server"], ["---"]
    for workload in workloads:
        unit = columns[workload][0]
        header += [unit, f"{unit} min-max", f"x {BASELINE}", "srv/cli CPU %"]
        align += ["---:"] * 4
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for name, by_workload in results.items():
        row = [name]
        for workload in workloads:
            scale = columns[workload][1]
            series = by_workload[workload]
            median = series.median()
            base_series = base.get(workload)
            ratio = _ratio(median, base_series.median() if base_series else None)
            cell = _fmt(None if median is None else median / scale, ",.0f")
            if series.failures:
                cell += f" ({len(series.failures)} failed)"
            rates = [s.rate / scale for s in series.samples]
            spread = f"{min(rates):,.0f}-{max(rates):,.0f}" if rates else "—"
            server_cpu = _fmt(series.median("server_cpu"), ".0f")
            cpu = f"{server_cpu}/{_fmt(series.median('client_cpu'), '.0f')}"
            row += [cell, spread, _fmt(ratio, ".2f"), cpu]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def cost_table(results: Results, workloads: Sequence[str]) -> str:
    """Server CPU time per unit of work (median over rounds), and its ratio to trio-bare.

    Less sensitive than the rates to whether the client and server were kept busy, so the
    better guide to the server's own overhead.
    """
    base = results.get(BASELINE, {})
    units = {"throughput": ("µs per MB", 1e6 * 1e6), "round_trips": ("µs per round trip", 1e6)}
    header, align = ["server"], ["---"]
    for workload in workloads:
        header += [f"server CPU {units[workload][0]}", f"x {BASELINE}"]
        align += ["---:", "---:"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for name, by_workload in results.items():
        row = [name]
        for workload in workloads:
            cost = by_workload[workload].median("server_cost")
            base_series = base.get(workload)
            ratio = _ratio(cost, base_series.median("server_cost") if base_series else None)
            row += [_fmt(None if cost is None else cost * units[workload][1], ",.1f")]
            row += [_fmt(ratio, ".2f")]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def disturbance_warning(results: Results) -> str | None:
    """A warning naming the samples taken while other work used much CPU, if any."""
    disturbed = [
        f"{name}/{workload} round {index + 1} ({sample.other_cpu:.0f}%)"
        for name, by_workload in results.items()
        for workload, series in by_workload.items()
        for index, sample in enumerate(series.samples)
        if sample.other_cpu is not None and sample.other_cpu > DISTURBED_CPU
    ]
    if not disturbed:
        return None
    return (
        f"Warning: {len(disturbed)} sample(s) ran while other processes or the kernel used "
        f"more than {DISTURBED_CPU:.0f}% of a CPU; their figures are unreliable: "
        + ", ".join(disturbed)
    )


def _metadata(args: argparse.Namespace, pin: tuple[int | None, int | None]) -> dict[str, Any]:
    try:
        import trio

        trio_version = trio.__version__
    except ImportError:  # pragma: no cover
        trio_version = None
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "client_cpu": pin[0],
        "server_cpu": pin[1],
        "trio": trio_version,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "retries": args.retries,
        "quiet_wait_s": args.quiet_wait,
        "disturbed_other_cpu_percent": DISTURBED_CPU,
        "chunk_bytes": CHUNK,
        "window_bytes": WINDOW,
        "rt_connections": RT_CONNECTIONS,
        "rt_size_bytes": RT_SIZE,
        "baseline": BASELINE,
        "load_average_at_start": list(os.getloadavg()),
    }


def to_json(results: Results, metadata: dict[str, Any]) -> dict[str, Any]:
    """The results, every round's samples included, as JSON-ready data."""
    out: dict[str, Any] = {"metadata": metadata, "results": {}}
    for name, by_workload in results.items():
        entry: dict[str, Any] = {}
        for workload, series in by_workload.items():
            base = results.get(BASELINE, {}).get(workload)
            median = series.median()
            entry[workload] = {
                "unit": "bytes/s" if workload == "throughput" else "round trips/s",
                "median": median,
                f"ratio_vs_{BASELINE}": _ratio(median, base.median() if base else None),
                "median_server_cpu_percent": series.median("server_cpu"),
                "median_client_cpu_percent": series.median("client_cpu"),
                "median_server_cpu_seconds_per_unit": series.median("server_cost"),
                "median_other_cpu_percent": series.median("other_cpu"),
                "samples": [asdict(s) for s in series.samples],
                "failures": series.failures,
            }
        out["results"][name] = entry
    return out


# -- profiling ---------------------------------------------------------------------------


def profile_server(
    name: str, workload: str, *, warmup: float, duration: float, top: int, out: Path
) -> None:
    """Run ``workload`` against server ``name`` under cProfile and print the hot spots.

    The profiler slows the server down, so the rate printed is not comparable with the
    table's; the relative costs are what this is for.
    """
    client_cpu, server_cpu = _cpu_layout(True)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    with running_server(name, cpu=server_cpu, profile=out) as server:
        sample = WORKLOADS[workload](server, warmup, duration)
    print(f"{name} {workload} under cProfile: {_describe(workload, sample)}\n")
    import pstats

    stats = pstats.Stats(str(out), stream=sys.stdout)
    # trionet's modules ("trionet/_x.py") and the classes attrs generates ("trionet._x.Y").
    print(f"## top {top} by tottime, trionet only")
    stats.sort_stats("tottime").print_stats(r"trionet[/\\.]_", top)
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        print(f"## top {top} by {order} (all code)")
        stats.sort_stats(order).print_stats(top)


# -- command line ------------------------------------------------------------------------


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _names(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(unknown) or 'empty list'}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of this script."""
    parser = argparse.ArgumentParser(
        description="TCP echo benchmark: trionet vs bare trio vs asyncio (127.0.0.1 only).",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--duration", type=_positive, default=2.0, help="seconds measured per workload (2)"
    )
    parser.add_argument("--warmup", type=_positive, default=0.3, help="warm-up seconds (0.3)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 1 round of 0.5 s, no retries or quiet wait (overrides those)",
    )
    parser.add_argument(
        "--servers",
        type=_names(list(SERVERS)),
        default=list(SERVERS),
        help=f"comma-separated subset of: {', '.join(SERVERS)}",
    )
    parser.add_argument(
        "--workloads",
        type=_names(list(WORKLOADS)),
        default=list(WORKLOADS),
        help=f"comma-separated subset of: {', '.join(WORKLOADS)}",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help=f"measure a sample again (up to this many times) when other processes used "
        f"more than {DISTURBED_CPU:g}%% of a CPU meanwhile (default 2)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=30.0,
        metavar="S",
        help="before each measurement, wait up to S seconds for other CPU use to stop "
        "(default 30; 0 disables)",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin client and server to separate CPUs"
    )
    parser.add_argument(
        "--profile",
        choices=list(SERVERS),
        metavar="SERVER",
        help="instead of the benchmark, profile SERVER (cProfile) under the first workload",
    )
    parser.add_argument(
        "--profile-out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "trionet-bench-server.prof",
        metavar="PATH",
        help="where --profile writes the cProfile statistics (default: in the temp dir)",
    )
    parser.add_argument("--top", type=int, default=25, help="entries shown by --profile (25)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or the profiler); returns 1 if any server failed."""
    args = build_parser().parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.retries, args.quiet_wait = 1, 0.5, 0, 0.0
    if args.rounds < 1:
        build_parser().error("--rounds must be at least 1")
    if args.retries < 0:
        build_parser().error("--retries must not be negative")
    if args.profile is not None:
        profile_server(
            args.profile,
            args.workloads[0],
            warmup=args.warmup,
            duration=args.duration,
            top=args.top,
            out=args.profile_out,
        )
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    pin = _cpu_layout(not args.no_pin)
    log(
        f"{args.rounds} round(s), {args.warmup:g} s warm-up + {args.duration:g} s per workload; "
        f"client CPU {pin[0]}, server CPU {pin[1]}; load average {os.getloadavg()[0]:.2f}"
    )
    settings = Settings(
        warmup=args.warmup,
        duration=args.duration,
        retries=args.retries,
        quiet_wait=args.quiet_wait,
        pin=not args.no_pin,
    )
    results = run_benchmark(
        args.servers, args.workloads, rounds=args.rounds, settings=settings, log=log
    )
    print(markdown_table(results, args.workloads))
    print(
        f"\nMedian of {args.rounds} round(s); MB = 10^6 bytes of echoed data; "
        f"{RT_CONNECTIONS} connections x {RT_SIZE}-byte round trips; "
        "CPU % = server/client process over the measurement (100 = one core).\n"
    )
    print(cost_table(results, args.workloads))
    print("\nLower is better: server CPU (user + system) spent per unit of echoed work.")
    warning = disturbance_warning(results)
    if warning:
        print(f"\n{warning}")
    if args.json is not None:
        args.json.write_text(json.dumps(to_json(results, _metadata(args, pin)), indent=2) + "\n")
    failed = any(s.failures for by in results.values() for s in by.values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
