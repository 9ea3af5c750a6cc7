"""Run the benchmark suite and write its outputs (``results.json``, ``results.md``, PNG charts)."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from .methods import Method


@dataclass
class SuiteOptions:
    """What ``run_suite`` runs.

    Args:
        quick: the CI-sized suite: one fidelity model (the embedded ``shapes`` if built, else ``tiny-flux``),
            the small speed transformer, no Wan-size forecaster cost. A few minutes on 2 CPU cores.
        out: folder for results.json, results.md and the charts.
        models: fidelity models by name (``spectrum bench --models``); None picks as described in ``models``.
        samples: prompts × seeds per model (at least 8 for reported numbers).
        budgets: real passes of 50 to match (14 ≈ 3.5x, 10 = 5x).
        diffusers_caches: also run diffusers' built-in caches (tuned per model and budget).
        speed / cost: run those parts.
        speed_repeats: rounds of the speed benchmark (median reported); None = 3 in quick mode, 5 otherwise.
        threads: torch intra-op threads (1 on a shared machine keeps timings steadier).
        method_filter: keep only the fidelity methods it accepts (tests).
        speed_size: override the speed transformer size ("quick" or "full").
        charts: draw PNG charts (needs matplotlib, the ``bench`` extra).
        command: the command line, recorded in the outputs.
    """

    quick: bool = False
    out: Path = Path("bench")
    models: list[str] | None = None
    samples: int = 8
    budgets: tuple[int, ...] = (14, 10)
    diffusers_caches: bool = True
    speed: bool = True
    cost: bool = True
    speed_repeats: int | None = None
    threads: int | None = 1
    method_filter: Callable[[Method], bool] | None = None
    speed_size: str | None = None
    charts: bool = True
    command: str = "spectrum bench"


def machine() -> dict[str, Any]:
    """Where the numbers come from: CPU, cores, torch, load average at the start."""
    import diffusers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": mem, "device": "cpu",
        "torch": torch.__version__, "diffusers": diffusers.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "load_average_start": _load(),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_suite(options: SuiteOptions, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run what ``options`` asks for, write the outputs to ``options.out`` and return the results."""
    from . import cost, fidelity, report, speed
    from .models import resolve_models

    if options.threads:
        torch.set_num_threads(options.threads)
    models = resolve_models(options.models, options.quick)  # validate names before any work
    started = time.perf_counter()
    results: dict[str, Any] = {
        "command": options.command,
        "quick": options.quick,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "options": {k: v for k, v in asdict(options).items() if k not in ("method_filter", "out")},
        "fidelity": [],
    }
    for model in models:
        log(f"fidelity: {model.name} ({model.label})")
        results["fidelity"].append(fidelity.run_model(
            model, options.budgets, options.samples, include_diffusers=options.diffusers_caches,
            quick=options.quick, method_filter=options.method_filter, log=log))
    if options.speed:
        log("speed")
        results["speed"] = speed.run_speed(options.quick, options.speed_repeats, options.speed_size, log=log)
    if options.cost:
        log("forecaster cost")
        results["cost"] = cost.run_cost(options.quick, log=log)
    results["machine"]["load_average_end"] = _load()
    results["seconds"] = time.perf_counter() - started
    results["checks"] = report.checks(results)

    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    results["charts"] = report.charts(results, out) if options.charts else []
    (out / "results.json").write_text(json.dumps(report.clean(results), indent=1, allow_nan=False, default=str) + "\n")
    (out / "results.md").write_text(report.markdown(results))
    return results
