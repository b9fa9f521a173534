"""The report: Markdown tables (medians, spreads, ratios, CPU), JSON, and a bar plot.

A rate measured while the load client used :data:`~measure.CLIENT_BOUND_CPU` % or more of
its core is the client's limit as much as the server's: the tables mark it ``≥`` (a floor)
with the number of such rounds, and the report says in words whether that happened.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from measure import CLIENT_BOUND_CPU, DISTURBED_CPU, Results, Series
from workloads import WORKLOADS


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def ratio(value: float | None, base: float | None) -> float | None:
    """``value / base``, or ``None`` when either is missing (or the base is zero)."""
    return None if value is None or not base else value / base


def _figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def workload_table(results: Results, workload: str, baseline: str) -> str:
    """One workload: median [min-max], ratio to the baseline, CPU use, floors."""
    w = WORKLOADS[workload]
    base = results.get(baseline, {}).get(workload)
    base_median = base.median() if base else None
    lines = [
        f"#### {workload}: {w.description}",
        "",
        f"| server | {w.unit}: median [min-max] | x {baseline} | srv CPU % | cli CPU % "
        "| cli core % | srv CPU µs/unit |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, by_workload in results.items():
        series = by_workload.get(workload)
        if series is None:
            continue
        median = series.median()
        rates = [s.rate / w.scale for s in series.samples]
        if median is None:
            cell = "failed"
        else:
            cell = f"{_figure(median / w.scale)} [{_figure(min(rates))} - {_figure(max(rates))}]"
            if series.client_bound_rounds:
                cell = f"≥ {cell} !{series.client_bound_rounds}"
        if series.failures:
            cell += f" ({len(series.failures)} failed)"
        cost = series.median("server_cost")
        cost_cell = _fmt(None if cost is None else cost * 1e6 * w.scale, ",.2f")
        row = [
            name,
            cell,
            _fmt(ratio(median, base_median), ".2f"),
            _fmt(series.median("server_cpu"), ".0f"),
            _fmt(series.median("client_cpu"), ".0f"),
            _fmt(series.median("client_core"), ".0f"),
            cost_cell,
        ]
        lines.append("| " + " | ".join(row) + " |")
    irregular = {
        name: sum(s.irregular for s in by[workload].samples)
        for name, by in results.items()
        if workload in by and any(s.irregular for s in by[workload].samples)
    }
    if irregular:
        listed = ", ".join(f"{name} {count}" for name, count in irregular.items())
        lines += ["", f"Closes late or without a close frame (all rounds): {listed}."]
    return "\n".join(lines)


def bottleneck_note(results: Results, workloads: Sequence[str]) -> str:
    """Whether the load client was ever the bottleneck, in words."""
    bound = [
        f"{name}/{workload} ({series.client_bound_rounds} of {len(series.samples)} rounds)"
        for name, by_workload in results.items()
        for workload in workloads
        if (series := by_workload.get(workload)) is not None and series.client_bound_rounds
    ]
    peak = max(
        (s.client_cpu for by in results.values() for series in by.values() for s in series.samples),
        default=0.0,
    )
    if not bound:
        return (
            f"Load client: never the bottleneck (its process peaked at {peak:.0f}% of a core; "
            f"a rate counts as a floor from {CLIENT_BOUND_CPU:.0f}%)."
        )
    return (
        f"Load client: the BOTTLENECK (≥ {CLIENT_BOUND_CPU:.0f}% of its core) in "
        + ", ".join(bound)
        + ". Those rates are floors, marked ≥ and !n (n = such rounds): the server may do more."
    )


def disturbance_note(results: Results) -> str | None:
    """A warning naming the samples taken while other processes used much CPU, if any."""
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
        f"Warning: {len(disturbed)} sample(s) ran while other processes used more than "
        f"{DISTURBED_CPU:.0f}% of a CPU; their figures are unreliable: " + ", ".join(disturbed)
    )


def markdown(results: Results, workloads: Sequence[str], metadata: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    baseline = metadata["baseline"]
    head = [
        f"### trionet benchmark, suite {metadata['suite']}, {metadata['date']}",
        "",
        f"{metadata['rounds']} interleaved round(s), {metadata['warmup_s']:g} s warm-up + "
        f"{metadata['duration_s']:g} s per workload; client on CPU {metadata['client_cpu']}, "
        f"server on CPU {metadata['server_cpu']} ({metadata['cpus']} CPUs); Python "
        f"{metadata['python']}, trio {metadata['trio']}; load average at start "
        f"{metadata['load_average_at_start'][0]:.2f}. Ratios are of medians, to {baseline} "
        "measured in the same run; higher is better except µs/unit (server CPU per unit).",
    ]
    parts = ["\n".join(head)]
    parts += [workload_table(results, w, baseline) for w in workloads]
    parts.append(bottleneck_note(results, workloads))
    warning = disturbance_note(results)
    if warning:
        parts.append(warning)
    return "\n\n".join(parts) + "\n"


def to_json(results: Results, metadata: dict[str, Any]) -> dict[str, Any]:
    """The results, every round's samples included, as JSON-ready data."""
    baseline = metadata["baseline"]
    out: dict[str, Any] = {"metadata": metadata, "results": {}}
    for name, by_workload in results.items():
        entry: dict[str, Any] = {}
        for workload, series in by_workload.items():
            base = results.get(baseline, {}).get(workload)
            median = series.median()
            w = WORKLOADS[workload]
            entry[workload] = {
                "unit": w.unit,
                "median": None if median is None else median / w.scale,
                f"ratio_vs_{baseline}": ratio(median, base.median() if base else None),
                "client_bound_rounds": series.client_bound_rounds,
                "median_server_cpu_percent": series.median("server_cpu"),
                "median_client_cpu_percent": series.median("client_cpu"),
                "median_client_core_percent": series.median("client_core"),
                "median_other_cpu_percent": series.median("other_cpu"),
                "samples": [asdict(s) | {"rate": s.rate / w.scale} for s in series.samples],
                "failures": series.failures,
            }
        out["results"][name] = entry
    return out


def plot(results: Results, workloads: Sequence[str], metadata: dict[str, Any], path: Path) -> str:
    """Bars per server (median, with the min-max range) per workload, written to ``path``.

    Returns a line for the report: where the plot went, or why there is none.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "Plot: skipped, matplotlib is not installed (nox -s bench installs it)."
    names = list(results)
    fig, axes = plt.subplots(
        1, len(workloads), figsize=(3.6 * len(workloads), 0.5 * len(names) + 1.8)
    )
    axes = [axes] if len(workloads) == 1 else list(axes)
    for ax, workload in zip(axes, workloads, strict=True):
        w = WORKLOADS[workload]
        series: list[Series] = [results[n][workload] for n in names]
        medians = [(s.median() or 0.0) / w.scale for s in series]
        low = [
            m - min((x.rate / w.scale for x in s.samples), default=m)
            for m, s in zip(medians, series, strict=True)
        ]
        high = [
            max((x.rate / w.scale for x in s.samples), default=m) - m
            for m, s in zip(medians, series, strict=True)
        ]
        colors = ["#2a6f97" if n.startswith("trionet") else "#a3a3a3" for n in names]
        bars = ax.barh(names, medians, xerr=[low, high], color=colors, capsize=2)
        for bar, s in zip(bars, series, strict=True):
            if s.client_bound_rounds:
                bar.set_hatch("//")
        for y, (m, h) in enumerate(zip(medians, high, strict=True)):
            ax.text(m + h, y, f" {_figure(m)}", va="center", fontsize=7)  # past the whisker
        ax.set_title(workload, fontsize=9)
        ax.set_xlabel(w.unit, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
        ax.margins(x=0.25)
        if ax is not axes[0]:
            ax.set_yticklabels([])
    fig.suptitle(
        f"Echo servers, medians of {metadata['rounds']} rounds, {metadata['date']} "
        "(hatched: load client at its limit)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return f"Plot: {path}"
