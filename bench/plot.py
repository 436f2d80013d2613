"""Throughput and p99 latency of the embedded engine against concurrency: a sweep, its JSON, and a PNG chart.

Run ``python -m bench.plot`` (about 2-3 minutes on a 2-core machine; ``--quick`` for a run under 60 s, ``--json``
to print the results). It sets the engine up once the way ``bench.embedded`` does (fsync on, one program, the 10
mixed rules, participants created by signup events; :func:`bench.embedded.prepared_engine`), then measures, on
the same engine, one closed-loop phase per point (:func:`bench.embedded.measure_phase`):

- ``submit`` at each of ``--levels`` (default 1, 4, 16, 64, 256, 1024) tasks, each awaiting
  ``engine.submit(one event)`` in a loop;
- ``batch`` at each of ``--batch-tasks`` (default 1, 4, 16) tasks, each awaiting ``engine.submit_batch`` of
  ``--batch-size`` (64) events, so its points sit at the same numbers of events in flight (64, 256, 1024).

Every point is ``--events`` fresh events (submit → outcome durable for all of them); the whole list of points is
run ``--repeats`` times, interleaved so that drift on a shared machine hits every point alike, and each point
reports the median events/s and p99 ms of its runs (every run is kept in the JSON). Writes
``docs/plots/throughput.json`` and ``docs/plots/throughput.png`` (``--output-dir`` to change where).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import trio

from bench._png import (
    BLUE,
    GREY,
    ORANGE,
    Axis,
    Canvas,
    Panel,
    Series,
    draw_legend,
    linear_ticks,
    log_ticks,
    text_width_px,
)
from bench.embedded import Workload, make_events, measure_phase, prepared_engine

DEFAULT_OUTPUT_DIR = Path(__file__).resolve().parent.parent / "docs" / "plots"


@dataclass(frozen=True)
class SweepSettings:
    """What one sweep runs: the set-up, the points, and how many events and repeats each point gets."""

    participants: int = 20_000
    events_per_point: int = 6000
    submit_levels: tuple[int, ...] = (1, 4, 16, 64, 256, 1024)
    batch_tasks: tuple[int, ...] = (1, 4, 16)
    batch_size: int = 64
    repeats: int = 3
    sync: bool = True
    tune_gc: bool = True
    seed: int = 42


QUICK = SweepSettings(participants=5000, events_per_point=1500, repeats=1)


def plan(settings: SweepSettings) -> list[tuple[str, int]]:
    """The points of one repeat, in order: ``(mode, tasks)``."""
    return [("submit", level) for level in settings.submit_levels] + [
        ("batch", tasks) for tasks in settings.batch_tasks
    ]


async def sweep(settings: SweepSettings) -> dict[str, Any]:
    """Set the engine up once, run every point ``repeats`` times; the raw figures and per-point medians."""
    workload = Workload(
        participants=settings.participants,
        events=settings.events_per_point,
        batch_size=settings.batch_size,
        modes=(),
        sync=settings.sync,
        seed=settings.seed,
        tune_gc=settings.tune_gc,
    )
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {point: [] for point in plan(settings)}
    started_s = time.perf_counter()
    async with prepared_engine(workload) as prepared:
        for repeat in range(settings.repeats):
            for mode, tasks in plan(settings):
                key = f"r{repeat}-{mode}-{tasks}"
                requests = make_events(
                    prepared.program_id,
                    settings.participants,
                    settings.events_per_point,
                    seed=settings.seed,
                    key_prefix=key,
                )
                phase_workload = replace(workload, concurrency=tasks, batch_tasks=tasks)
                figures = await measure_phase(prepared.engine, key, requests, phase_workload, prepared.recorder, mode)
                runs[mode, tasks].append(figures)
    return {
        "settings": asdict(settings),
        "signup_events_per_s": round(settings.participants / prepared.signup_s, 1),
        "elapsed_s": round(time.perf_counter() - started_s, 1),
        "points": [
            summarize_point(mode, tasks, settings.batch_size, figures) for (mode, tasks), figures in runs.items()
        ],
    }


def summarize_point(mode: str, tasks: int, batch_size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One point of the chart: medians over its runs, plus every run's headline figures."""
    events_per_call = batch_size if mode == "batch" else 1
    return {
        "mode": mode,
        "tasks": tasks,
        "events_per_call": events_per_call,
        "events_in_flight": tasks * events_per_call,
        "events_per_s": round(statistics.median(run["events_per_s"] for run in runs), 1),
        "p50_ms": round(statistics.median(run["p50_ms"] for run in runs), 2),
        "p99_ms": round(statistics.median(run["p99_ms"] for run in runs), 2),
        "events_per_s_runs": [run["events_per_s"] for run in runs],
        "p99_ms_runs": [run["p99_ms"] for run in runs],
        "events_failed": sum(run["events_failed"] for run in runs),
        "commit_batch_records_mean": [run["commit_batch_records_mean"] for run in runs],
    }


def _series(points: list[dict[str, Any]], field: str, batch_size: int) -> list[Series]:
    submit = [(p["events_in_flight"], p[field]) for p in points if p["mode"] == "submit"]
    batch = [(p["events_in_flight"], p[field]) for p in points if p["mode"] == "batch"]
    return [
        Series("submit (1 event a call)", submit, BLUE, "circle"),
        Series(f"submit_batch ({batch_size} events a call)", batch, ORANGE, "square"),
    ]


def _log_range(values: list[float]) -> tuple[float, float]:
    """The 1-2-5 values just around ``values``, with some room, for a log axis."""
    nice = [factor * 10.0**power for power in range(-3, 8) for factor in (1, 2, 5)]
    low = max(value for value in nice if value <= min(values) / 1.15)
    high = min(value for value in nice if value >= max(values) * 1.15)
    return low, high


def render_chart(points: list[dict[str, Any]], subtitle: str, batch_size: int) -> Canvas:
    """Two panels sharing a log x axis (events in flight): events/s (linear) above, p99 ms (log) below."""
    canvas = Canvas(1060, 840)
    for offset_px in (0, 1):  # twice, one pixel apart: bold
        canvas.text(30 + offset_px, 16, "Embedded engine: throughput and p99 latency against concurrency")
    too_wide = text_width_px(subtitle, 2) > canvas.width_px - 60
    lines = subtitle.split("; ") if too_wide else [subtitle]
    for index, line in enumerate(lines):
        canvas.text(30, 40 + 20 * index, line, GREY)
    throughput, latency = _series(points, "events_per_s", batch_size), _series(points, "p99_ms", batch_size)
    draw_legend(canvas, 150, 52 + 20 * len(lines) + (4 if too_wide else 0), throughput)
    x_values = sorted({p["events_in_flight"] for p in points})
    x_axis = Axis(x_values[0] / 1.6, x_values[-1] * 1.6, log=True)
    rate_ticks = linear_ticks(max(p["events_per_s"] for p in points) * 1.05)
    top = Panel((130, 160, 1020, 420), x_axis, Axis(0.0, rate_ticks[-1]))
    top.draw_axes(canvas, x_values, rate_ticks, ("Throughput (higher is better)", "", "events/s"))
    low_ms, high_ms = _log_range([p["p99_ms"] for p in points])
    bottom = Panel((130, 510, 1020, 750), x_axis, Axis(low_ms, high_ms, log=True))
    labels = (
        "p99 latency, submit → outcome durable (lower is better)",
        "events in flight: tasks × events a call (log)",
        "p99 ms (log)",
    )
    bottom.draw_axes(canvas, x_values, log_ticks(low_ms, high_ms), labels)
    for panel, series in ((top, throughput), (bottom, latency)):
        for item in series:
            panel.draw_series(canvas, item)
    return canvas


def describe_machine() -> str:
    """``cpus, CPU model`` for the subtitle and the JSON."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} vCPU {model}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="5k participants, 1500 events a point, one repeat (< 60 s)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--participants", type=int, help="participants (default 20000; quick 5000)")
    parser.add_argument("--events", type=int, help="events per point and repeat (default 6000; quick 1500)")
    parser.add_argument("--repeats", type=int, help="runs of every point (default 3; quick 1)")
    parser.add_argument("--levels", help="comma-separated submit tasks (default 1,4,16,64,256,1024)")
    parser.add_argument("--batch-tasks", help="comma-separated submit_batch tasks (default 1,4,16; empty: none)")
    parser.add_argument("--batch-size", type=int, help="events per submit_batch call (default 64)")
    parser.add_argument("--no-sync", action="store_true", help="no fsync (LMDB still commits every transaction)")
    parser.add_argument("--no-tune-gc", action="store_true", help="keep the interpreter's GC settings (tests)")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where throughput.{json,png} go")
    return parser


def settings_from(arguments: argparse.Namespace) -> SweepSettings:
    """The sweep the options ask for: the default or quick preset, with any option overriding it."""
    settings = QUICK if arguments.quick else SweepSettings()

    def levels(text: str | None, default: tuple[int, ...]) -> tuple[int, ...]:
        return default if text is None else tuple(int(level) for level in text.split(",") if level)

    return replace(
        settings,
        participants=arguments.participants or settings.participants,
        events_per_point=arguments.events or settings.events_per_point,
        repeats=arguments.repeats or settings.repeats,
        submit_levels=levels(arguments.levels, settings.submit_levels),
        batch_tasks=levels(arguments.batch_tasks, settings.batch_tasks),
        batch_size=arguments.batch_size or settings.batch_size,
        sync=not arguments.no_sync,
        tune_gc=not arguments.no_tune_gc,
    )


def write_outputs(result: dict[str, Any], output_dir: Path) -> tuple[Path, Path]:
    """``throughput.json`` and ``throughput.png`` in ``output_dir``; returns their paths."""
    settings = result["settings"]
    runs = "1 run" if settings["repeats"] == 1 else f"median of {settings['repeats']} runs"
    subtitle = (
        f"10 rules, {settings['participants']:,} participants, fsync on, {settings['events_per_point']:,} events/point, "
        f"{runs}; {os.cpu_count()} shared vCPUs"
    )
    if not settings["sync"]:
        subtitle = subtitle.replace("fsync on", "fsync off")
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = output_dir / "throughput.json", output_dir / "throughput.png"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    render_chart(result["points"], subtitle, settings["batch_size"]).save(png_path)
    return json_path, png_path


def print_table(result: dict[str, Any]) -> None:
    """The points as a human-readable table."""
    print(f"{'mode':<7} {'tasks':>5} {'in flight':>9} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>9}  runs (events/s)")
    for point in result["points"]:
        runs = ", ".join(f"{rate:,.0f}" for rate in point["events_per_s_runs"])
        print(
            f"{point['mode']:<7} {point['tasks']:>5} {point['events_in_flight']:>9} {point['events_per_s']:>9,.0f}"
            f" {point['p50_ms']:>8.1f} {point['p99_ms']:>9.1f}  {runs}"
        )
    print(f"sweep {result['elapsed_s']} s (set-up included), load average before/after {result['load_average']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse options, run the sweep, write the JSON and the PNG, print; returns the results."""
    arguments = _parser().parse_args(argv)
    settings = settings_from(arguments)
    load_before = os.getloadavg()[0]
    result = trio.run(sweep, settings)
    result["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    result["command"] = " ".join(["python -m bench.plot", *(argv if argv is not None else sys.argv[1:])])
    result["machine"] = describe_machine()
    result["python"] = platform.python_version()
    json_path, png_path = write_outputs(result, arguments.output_dir)
    if arguments.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
        print(f"wrote {json_path} and {png_path}")
    return result


if __name__ == "__main__":
    main()
