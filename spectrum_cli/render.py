"""Everything the CLI shows a person: rich tables and the step progress bar, all on stderr.

stdout is reserved for data (`--json`), so every Console here writes to stderr, and the progress bar
switches itself off when stderr is not a terminal (pipes, CI, log files).
"""

from __future__ import annotations

import math
import re
import statistics
from contextlib import contextmanager
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# emoji=False: rich would otherwise turn ":name:" in a path or prompt into an emoji ("x:abc:" -> "x🔤").
err = Console(stderr=True, highlight=False, emoji=False)        # progress, tables, "wrote": silenced by -q
errors = Console(stderr=True, highlight=False, emoji=False)     # error lines: never silenced

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text: Any) -> str:
    """`text` on one line: control characters (newlines, ANSI escapes) written as escapes (\\n, \\x1b),
    so a prompt or a path can neither cut a line nor restyle the terminal."""
    return _CONTROL.sub(lambda m: repr(m[0])[1:-1], str(text))


def safe(text: Any) -> str:
    """`plain(text)` with rich markup escaped: for text placed inside a rich markup string."""
    return escape(plain(text))


def stdout_console() -> Console:
    """For what a person reads on stdout (`spectrum presets`): wide when piped, so no column is cut."""
    import sys

    return Console(highlight=False, emoji=False, width=None if sys.stdout.isatty() else 200)


def set_quiet(quiet: bool) -> None:
    """-q: only errors (and --json data) are printed."""
    err.quiet = quiet

REAL_MARK, FORECAST_MARK = "[bold green]█[/]", "[dim]·[/]"


def _fmt_seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f} s"


def _fmt_bytes(n: int | None) -> str:
    if n is None:
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _fmt_float(x: float | None, digits: int = 2, unit: str = "") -> str:
    if x is None:
        return "n/a"
    if math.isinf(x):
        return "∞ (identical)"
    return f"{x:.{digits}f}{unit}"


@contextmanager
def step_progress(labels: list[str], num_steps: int) -> Iterator[Any]:
    """A progress bar per run label ("baseline", "spectrum", ...). Yields `update(label, info)`, which
    advances that bar and appends █ (the network ran) or · (forecast) to its step strip."""
    progress = Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TextColumn("{task.fields[strip]}"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
        disable=not err.is_terminal,
    )
    tasks = {label: progress.add_task(label, total=num_steps, strip="") for label in labels}
    strips = {label: [] for label in labels}

    def update(label: str, info: Any) -> None:
        strips[label].append(REAL_MARK if info.real else FORECAST_MARK)
        progress.update(tasks[label], completed=info.step + 1, total=info.num_steps, strip="".join(strips[label]))

    with progress:
        yield update


def _steps_cell(run: Any) -> str:
    """The steps of a run: the requested count, and how many of them ran when `strength` < 1 ran fewer."""
    ran = len(run.real_steps) + len(run.forecast_steps)
    if 0 < ran < run.job.steps:
        return f"{ran} of {run.job.steps} (strength {run.job.strength:g})"
    return str(run.job.steps)


def summary_table(result: Any, comparison: Any = None, speedups: list[float] | None = None) -> Table:
    """One run (speedup estimated from its timed real passes) or an A/B pair (speedup measured; over
    several pairs, their median and range)."""
    table = Table(title="spectrum", title_style="bold", show_header=comparison is not None, box=None,
                  padding=(0, 2))
    runs = [comparison.baseline, comparison.accelerated] if comparison is not None else [result]
    table.add_column("", style="bold")
    for run in runs:
        table.add_column(run.job.method if run.job.spectrum is not None else "baseline", justify="right")

    def row(name: str, *cells: str) -> None:
        table.add_row(name, *cells)

    row("model", *(safe(r.model) for r in runs))
    row("steps", *(_steps_cell(r) for r in runs))
    row("real passes (NFE)", *(str(r.nfe) for r in runs))
    if any(r.job.spectrum is not None for r in runs):
        row("schedule", *(safe(r.job.profile if r.job.profile != "reference" else "reference (paper)")
                          if r.job.spectrum is not None else "" for r in runs))
    row("passes avoided", *(f"{len(r.forecast_steps)} ({100 * len(r.forecast_steps) / max(1, len(r.real_steps) + len(r.forecast_steps)):.0f}%)"
                            for r in runs))
    row("transformer", *(_fmt_seconds(r.transformer_seconds) for r in runs))
    row("total", *(_fmt_seconds(r.seconds) for r in runs))
    if any(r.batch_size > 1 for r in runs):
        row("batch", *(f"{r.batch_size} samples in one call (times are the call's)" for r in runs))
    if any(r.peak_memory_bytes is not None for r in runs):
        row("peak memory", *(_fmt_bytes(r.peak_memory_bytes) for r in runs))
    if any(r.forecaster_state_bytes for r in runs):
        row("forecaster state", *(f"{_fmt_bytes(r.forecaster_state_bytes)} on {safe(r.forecaster_state_device or '?')}"
                                  if r.forecaster_state_bytes else "" for r in runs))
    if comparison is not None:
        if speedups and len(speedups) > 1:
            row("speedup", "1.00x", f"[bold]{statistics.median(speedups):.2f}x[/] measured (median of "
                f"{len(speedups)} pairs, {min(speedups):.2f}-{max(speedups):.2f}x)")
        else:
            row("speedup", "1.00x", f"[bold]{comparison.speedup:.2f}x[/] measured")
        row("PSNR", "", _fmt_float(comparison.psnr, 2, " dB"))
        row("SSIM", "", _fmt_float(comparison.ssim, 4))
        row("LPIPS", "", _fmt_float(comparison.lpips, 4) if comparison.lpips is not None else "n/a (no local weights)")
    elif result.estimated_speedup is not None:
        row("speedup", f"[bold]{result.estimated_speedup:.2f}x[/] estimated")
    else:
        row("speedup", "1.00x (no acceleration)")
    return table


def presets_table(presets: list[Any], status: dict[str, str], default: str) -> Table:
    table = Table(title="Model presets", title_style="bold", header_style="bold", caption=f"* default ({default})")
    table.add_column("name", no_wrap=True)
    table.add_column("model", overflow="fold", min_width=16)
    for col in ("steps", "size", "spectrum"):
        table.add_column(col, no_wrap=True)
    table.add_column("weights")
    for p in presets:
        size = f"{p.width}x{p.height}" + (f" {p.frames}f" if p.is_video else "")
        method, c = p.spectrum.method, p.spectrum.config
        schedule = (f"nfe={c.nfe}" if c.nfe is not None else f"every {c.interval}" if c.interval is not None
                    else f"α={c.effective_alpha:g}")
        knobs = "off" if method == "none" else (
            ("" if method == "spectrum" else f"{method} ") + schedule + f" w={c.blend:g}")
        name = f"{p.name} *" if p.name == default else p.name
        table.add_row(name, p.hub_id or p.source, str(p.steps), size, knobs, status[p.name])
    return table


def preset_detail(preset: Any) -> Table:
    table = Table(title=f"preset {preset.name}", title_style="bold", show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in preset.to_dict().items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        table.add_row(key, "-" if value is None else str(value))
    return table
