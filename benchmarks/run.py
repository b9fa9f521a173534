"""Run the benchmarks: ``python benchmarks/run.py [--suite ws|tcp|all] [--quick] ...``.

Each server runs in its own process, pinned to one CPU while this process (the load client)
is pinned to another.  Rounds are interleaved: every round starts each server afresh, in a
rotated order, and measures every workload against it.  The report (Markdown on stdout,
and Markdown, JSON and a PNG plot in ``--out``) gives medians over the rounds, ratios to a
baseline from the same run, CPU use, and whether the load client was the bottleneck.

``--help`` lists the options; ``--quick`` is a smoke test whose figures mean nothing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import report
from measure import (
    DISTURBED_CPU,
    BenchmarkError,
    Results,
    Sample,
    Series,
    ServerProcess,
    cpu_layout,
    running_server,
    wait_for_quiet,
)
from servers import SERVERS
from workloads import SUITES, WORKLOADS

DEFAULT_OUT = Path(__file__).with_name("results")


@dataclass(frozen=True)
class Settings:
    """How each measurement is taken."""

    warmup: float  # seconds of load before the measurement window opens
    duration: float  # seconds the window stays open
    retries: int  # extra attempts for a sample disturbed by other CPU use
    quiet_wait: float  # longest wait for the machine to be quiet before a measurement
    pin: bool  # pin client and server to different CPUs when there are two


def describe(workload: str, sample: Sample) -> str:
    """One log line for a sample."""
    w = WORKLOADS[workload]
    server = "?" if sample.server_cpu is None else f"{sample.server_cpu:.0f}%"
    other = "?" if sample.other_cpu is None else f"{sample.other_cpu:.0f}%"
    floor = "  CLIENT-BOUND (floor)" if sample.client_bound else ""
    return (
        f"{sample.rate / w.scale:11,.1f} {w.unit:5}  client CPU {sample.client_cpu:.0f}%  "
        f"server CPU {server}  other {other}{floor}"
    )


def measure(
    server: ServerProcess, workload: str, settings: Settings, log: Callable[[str], None]
) -> Sample:
    """Measure ``workload``; again (bounded) while other CPU use disturbs it.

    Each attempt first waits (at most ``settings.quiet_wait`` s) for the rest of the machine
    to go quiet.  Returns the least disturbed attempt.
    """
    attempts: list[Sample] = []
    for _ in range(settings.retries + 1):
        if settings.quiet_wait > 0 and not wait_for_quiet(settings.quiet_wait):
            log(f"{workload:12} the machine stayed busy for {settings.quiet_wait:g} s; measuring")
        sample = WORKLOADS[workload].measure(server, settings.warmup, settings.duration)
        log(f"{workload:12} {describe(workload, sample)}")
        attempts.append(sample)
        if sample.other_cpu is None or sample.other_cpu <= DISTURBED_CPU:
            break
        if len(attempts) <= settings.retries:
            log(f"{workload:12} disturbed by other CPU use; measuring again")
    return min(attempts, key=lambda s: s.other_cpu or 0.0)


def run_benchmark(
    servers: Sequence[str],
    workloads: Sequence[str],
    *,
    rounds: int,
    settings: Settings,
    log: Callable[[str], None],
) -> Results:
    """Every round: each server afresh (in a rotated order), every workload against it.

    A server that fails is recorded as a failure of that round and the run goes on.
    """
    results: Results = {name: {w: Series() for w in workloads} for name in servers}
    client_cpu, server_cpu = cpu_layout(settings.pin)
    saved = os.sched_getaffinity(0) if client_cpu is not None else None
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    try:
        for index in range(rounds):
            shift = index % len(servers)
            for name in [*servers[shift:], *servers[:shift]]:
                label = f"round {index + 1} {name:19}"
                done: set[str] = set()
                try:
                    with running_server(name, cpu=server_cpu, client_core=client_cpu) as server:
                        for workload in workloads:
                            results[name][workload].samples.append(
                                measure(
                                    server, workload, settings, lambda t, p=label: log(f"{p} {t}")
                                )
                            )
                            done.add(workload)
                except (BenchmarkError, OSError) as exc:
                    log(f"{label} FAILED: {exc}")
                    for workload in set(workloads) - done:
                        results[name][workload].failures.append(f"round {index + 1}: {exc}")
    finally:
        if saved is not None:
            os.sched_setaffinity(0, saved)
    return results


def profile_server(name: str, workload: str, settings: Settings, top: int, out: Path) -> None:
    """Run ``workload`` against server ``name`` under cProfile and print the hot spots.

    The profiler slows the server down, so the rate printed is not comparable with the
    table's; the relative costs are what this is for.
    """
    import pstats

    client_cpu, server_cpu = cpu_layout(settings.pin)
    if client_cpu is not None:
        os.sched_setaffinity(0, {client_cpu})
    with running_server(name, cpu=server_cpu, client_core=client_cpu, profile=out) as server:
        sample = WORKLOADS[workload].measure(server, settings.warmup, settings.duration)
    print(f"{name} {workload} under cProfile: {describe(workload, sample)}\n")
    stats = pstats.Stats(str(out), stream=sys.stdout)
    print(f"## top {top} by tottime, trionet only")
    stats.sort_stats("tottime").print_stats(r"trionet[/\\.]_", top)
    stats.strip_dirs()
    for order in ("tottime", "cumulative"):
        print(f"## top {top} by {order} (all code)")
        stats.sort_stats(order).print_stats(top)


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
    """The command-line parser."""
    parser = argparse.ArgumentParser(
        description="Echo benchmarks: trionet against its peers (127.0.0.1 only)."
    )
    add = parser.add_argument
    add("--suite", choices=[*SUITES, "all"], default="ws", help="which suite (default ws)")
    add("--servers", type=_names(list(SERVERS)), help="comma-separated subset of the servers")
    add("--workloads", type=_names(list(WORKLOADS)), help="comma-separated subset")
    add("--baseline", choices=list(SERVERS), help="server the ratios use (suite default)")
    add("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    add("--duration", type=_positive, default=2.0, help="seconds measured per workload (2)")
    add("--warmup", type=_positive, default=0.3, help="warm-up seconds (0.3)")
    add("--quick", action="store_true", help="smoke test: 1 round of 0.5 s, no retries/waits")
    add("--retries", type=int, default=2, help="re-measure a disturbed sample (default 2)")
    add("--quiet-wait", type=float, default=30.0, metavar="S", help="wait for quiet (30 s)")
    add("--no-pin", action="store_true", help="do not pin client and server to separate CPUs")
    add("--out", type=Path, default=DEFAULT_OUT, help=f"report directory ({DEFAULT_OUT})")
    add("--no-files", action="store_true", help="print the report only, write no files")
    each = " (--suite all: one per suite, PATH's name gets -ws, -tcp)"
    add("--json", type=Path, metavar="PATH", help="also write the JSON to PATH" + each)
    add("--plot", type=Path, metavar="PATH", help="also write the PNG plot to PATH" + each)
    add("--note", default="", help="a line added to the report (e.g. the machine's state)")
    add("--profile", choices=list(SERVERS), metavar="SERVER", help="profile SERVER instead")
    add(
        "--profile-out",
        type=Path,
        default=Path(tempfile.gettempdir()) / "trionet-bench-server.prof",
        metavar="PATH",
    )
    add("--top", type=int, default=25, help="entries shown by --profile (25)")
    return parser


def _metadata(args: argparse.Namespace, suite: str, baseline: str) -> dict[str, Any]:
    try:
        import trio

        trio_version: str | None = trio.__version__
    except ImportError:  # pragma: no cover
        trio_version = None
    client, server = cpu_layout(not args.no_pin)
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "suite": suite,
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "client_cpu": client,
        "server_cpu": server,
        "trio": trio_version,
        "rounds": args.rounds,
        "warmup_s": args.warmup,
        "duration_s": args.duration,
        "retries": args.retries,
        "quiet_wait_s": args.quiet_wait,
        "baseline": baseline,
        "load_average_at_start": list(os.getloadavg()),
        "note": args.note,
    }


def for_suite(path: Path, suite: str, chosen: str) -> Path:
    """Where ``--plot``/``--json`` go for ``suite``: as given, or suffixed under ``--suite all``.

    With several suites in one run, each suite's file gets its name (``bench-ws.png``
    becomes ``bench-ws-tcp.png`` and ``bench-ws-ws.png``) instead of overwriting the last.
    """
    if chosen != "all":
        return path
    return path.with_name(f"{path.stem}-{suite}{path.suffix}")


def run_suite(args: argparse.Namespace, suite: str, log: Callable[[str], None]) -> bool:
    """Run one suite and write its report; returns whether every measurement succeeded."""
    defaults = SUITES[suite]
    workloads = [w for w in (args.workloads or defaults.workloads) if WORKLOADS[w].suite == suite]
    servers = args.servers or list(defaults.servers)
    if args.suite == "all":  # with several suites, each takes the servers that are its own
        servers = [name for name in servers if name in defaults.servers]
    if not workloads or not servers:
        return True
    baseline = args.baseline or defaults.baseline
    metadata = _metadata(args, suite, baseline)
    settings = Settings(args.warmup, args.duration, args.retries, args.quiet_wait, not args.no_pin)
    log(f"suite {suite}: {', '.join(servers)} x {', '.join(workloads)}; {args.rounds} round(s)")
    results = run_benchmark(servers, workloads, rounds=args.rounds, settings=settings, log=log)
    text = report.markdown(results, workloads, metadata)
    if args.note:
        text += f"\n{args.note}\n"
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + f"-{suite}"
    plots = [] if args.no_files else [args.out / f"{stamp}.png"]
    if args.plot is not None:
        plots.append(for_suite(args.plot, suite, args.suite))
    for path in plots:
        path.parent.mkdir(parents=True, exist_ok=True)
        text += "\n" + report.plot(results, workloads, metadata, path) + "\n"
    print(text, flush=True)
    data = json.dumps(report.to_json(results, metadata), indent=2) + "\n"
    if not args.no_files:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{stamp}.md").write_text(text)
        (args.out / f"{stamp}.json").write_text(data)
        log(f"report: {args.out / stamp}.md / .json")
    if args.json is not None:
        for_suite(args.json, suite, args.suite).write_text(data)
    return not any(s.failures for by in results.values() for s in by.values())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or the profiler); returns 1 if any server failed."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup, args.retries, args.quiet_wait = 1, 0.5, 0.2, 0, 0
    if args.rounds < 1 or args.retries < 0:
        parser.error("--rounds must be at least 1 and --retries not negative")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if args.profile is not None:
        settings = Settings(args.warmup, args.duration, 0, 0.0, not args.no_pin)
        workload = (
            args.workloads or SUITES[args.suite if args.suite != "all" else "ws"].workloads
        )[0]
        profile_server(args.profile, workload, settings, args.top, args.profile_out)
        return 0
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    ok = [run_suite(args, suite, log) for suite in suites]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
