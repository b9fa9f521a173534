"""What every workload shares: server processes, CPU accounting, samples and series.

A workload function takes a running server, a warm-up and a duration and returns one
:class:`Sample`: the rate over the measurement window, and the CPU use of the load client,
of the server, of the client's core and of the rest of the machine meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
SERVER_SCRIPT = Path(__file__).with_name("servers.py")

READY_TIMEOUT = 20.0  # seconds for a server to start and print READY
CONNECT_TIMEOUT = 5.0  # seconds for each client connection to be established
STALL_TIMEOUT = 5.0  # seconds without any progress before giving up on a server
DRAIN_TIMEOUT = 5.0  # seconds for the outstanding echo to arrive after the measurement
STOP_TIMEOUT = 5.0  # seconds for a server to exit after SIGTERM (then after SIGKILL)
POLL_INTERVAL = 0.05  # longest single wait in the client loops, so deadlines are checked
DISTURBED_CPU = 15.0  # other CPU use (% of a core) past which a sample counts as disturbed
CLIENT_BOUND_CPU = 90.0  # client CPU (% of a core) from which a rate is only a floor


class BenchmarkError(Exception):
    """A server misbehaved: it failed to start, stalled, closed early or echoed wrong bytes."""


# -- CPU accounting ----------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def own_cpu_seconds() -> float:
    """User + system CPU seconds used by this (single-threaded) process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds used by process ``pid``, or ``None`` without ``/proc``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def busy_seconds(cpu: int | None = None, *, irq: bool = True) -> float | None:
    """CPU seconds spent busy by all CPUs, or by CPU ``cpu``, since boot.

    With ``irq`` false, interrupt and softirq time are left out: on loopback much of the
    TCP work is softirq time, charged to no process, and it is not a disturbance.
    """
    label = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        with open("/proc/stat") as stat:
            for line in stat:
                fields = line.split()
                if fields and fields[0] == label:
                    break
            else:
                return None
    except OSError:
        return None
    user, nice, system, _idle, _iowait, hardirq, softirq, steal = map(int, fields[1:9])
    interrupts = hardirq + softirq if irq else 0
    return (user + nice + system + interrupts + steal) / _CLOCK_TICKS


def _minus(end: float | None, start: float | None) -> float | None:
    return None if end is None or start is None else end - start


@dataclass(frozen=True)
class Sample:
    """One measurement: a rate (units per second) and CPU use in percent of one core.

    ``client_cpu`` is the load client process, ``client_core`` the busy share of the core
    it is pinned to (kernel work for its sockets included), ``other_cpu`` what the rest of
    the machine used meanwhile (much of it means the figures are disturbed).
    """

    rate: float
    client_cpu: float
    server_cpu: float | None
    other_cpu: float | None = None
    client_core: float | None = None
    irregular: int = 0  # handshakes: closes that came late or without a close frame

    @property
    def client_bound(self) -> bool:
        """Whether the load client was near a full core: the rate is then only a floor."""
        return self.client_cpu >= CLIENT_BOUND_CPU

    @property
    def server_cost(self) -> float | None:
        """Server CPU seconds per unit of rate."""
        if self.server_cpu is None or not self.rate:
            return None
        return self.server_cpu / 100.0 / self.rate


@dataclass
class Window:
    """Counters sampled at the start and at the end of the measurement window."""

    server_pid: int
    client_core_id: int | None = None
    start: float = 0.0
    count: float = 0
    client_cpu: float = 0.0
    server_cpu: float | None = None
    machine_busy: float | None = None
    core_busy: float | None = None

    def open(self, now: float, count: float) -> None:
        self.start, self.count = now, count
        self.client_cpu = own_cpu_seconds()
        self.server_cpu = process_cpu_seconds(self.server_pid)
        self.machine_busy = busy_seconds(irq=False)
        if self.client_core_id is not None:
            self.core_busy = busy_seconds(self.client_core_id)

    def close(self, now: float, count: float, irregular: int = 0) -> Sample:
        elapsed = now - self.start
        client = own_cpu_seconds() - self.client_cpu
        server = _minus(process_cpu_seconds(self.server_pid), self.server_cpu)
        busy = _minus(busy_seconds(irq=False), self.machine_busy)
        core = None
        if self.client_core_id is not None:
            core = _minus(busy_seconds(self.client_core_id), self.core_busy)
        other = None if busy is None or server is None else max(0.0, busy - client - server)
        return Sample(
            rate=(count - self.count) / elapsed,
            client_cpu=100.0 * client / elapsed,
            server_cpu=None if server is None else 100.0 * server / elapsed,
            other_cpu=None if other is None else 100.0 * other / elapsed,
            client_core=None if core is None else min(100.0, 100.0 * core / elapsed),
            irregular=irregular,
        )


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

    @property
    def client_bound_rounds(self) -> int:
        """How many rounds had the load client near a full core."""
        return sum(s.client_bound for s in self.samples)


Results = dict[str, dict[str, Series]]
"""server name -> workload name -> series."""


def cpu_layout(pin: bool) -> tuple[int | None, int | None]:
    """CPUs for (client, server): two different ones when pinning is possible."""
    if not pin or not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return cpus[0], cpus[1]


def wait_for_quiet(limit: float, *, window: float = 0.25) -> bool:
    """Wait until the machine's CPU use stays under :data:`DISTURBED_CPU` for ``window``.

    Call it while no load runs.  Returns whether it went quiet within ``limit`` seconds;
    without ``/proc/stat`` it returns at once.
    """
    deadline = time.monotonic() + limit
    while True:
        before = busy_seconds(irq=False)
        if before is None:
            return True
        time.sleep(window)
        after = busy_seconds(irq=False)
        if after is not None and 100.0 * (after - before) / window <= DISTURBED_CPU:
            return True
        if time.monotonic() >= deadline:
            return False


# -- server processes --------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A running echo server: its process, the port it listens on, the client's CPU."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    client_core: int | None = None


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
    return stream.read().decode(errors="replace")[-limit:].strip()


@contextlib.contextmanager
def running_server(
    name: str,
    *,
    cpu: int | None = None,
    client_core: int | None = None,
    profile: Path | None = None,
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
            yield ServerProcess(name, process, port, client_core)
        except (BenchmarkError, OSError) as exc:
            _stop(process)
            output = _tail(stderr)
            raise BenchmarkError(f"{name}: {exc}" + (f"\n{output}" if output else "")) from exc
        finally:
            _stop(process)
            assert process.stdout is not None
            process.stdout.close()
