"""`spectrum bench`: run the benchmark suite (spectrum_core.bench) and write its report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import EXIT_FAILED, UsageError, cli_errors
from .render import err

QuickOpt = Annotated[bool, typer.Option(
    "--quick", help="The CI-sized suite: one fidelity model, a small speed transformer, no Wan-size forecaster "
    "cost. A few minutes on 2 CPU cores.")]
DEFAULT_BENCH_OUT = Path("outputs/bench")  # not the committed bench/ folder, unless asked with --out bench
BenchOutOpt = Annotated[Path, typer.Option(
    "--out", "-o", help="Folder for results.json, results.md and the PNG charts (--out bench updates the "
    "committed results).", file_okay=False)]
ModelsOpt = Annotated[Optional[list[str]], typer.Option(
    "--models", help="Fidelity models, repeatable or comma-separated: shapes and moving (the embedded trained "
    "image and video models), tiny-flux, tiny-sd35, tiny-hunyuan, tiny-wan, tiny-wan22. \\[default: the embedded "
    "models that are built (shapes alone with --quick), else tiny random models: tiny-flux with --quick, all "
    "of them without]", show_default=False)]
SamplesOpt = Annotated[int, typer.Option("--samples", help="Prompt × seed pairs per model (8 or more for "
                                                            "reported numbers).", min=1)]
BenchJsonOpt = Annotated[bool, typer.Option("--json", help="Also print results.json on stdout.")]


def _command(quick: bool, out: Path, models: list[str] | None, samples: int) -> str:
    parts = ["spectrum bench"]
    if quick:
        parts.append("--quick")
    if out != DEFAULT_BENCH_OUT:
        parts.append(f"--out {out}")
    if models:
        parts.append(f"--models {','.join(models)}")
    if samples != 8:
        parts.append(f"--samples {samples}")
    return " ".join(parts)


def bench(
    quick: QuickOpt = False,
    out: BenchOutOpt = DEFAULT_BENCH_OUT,
    models: ModelsOpt = None,
    samples: SamplesOpt = 8,
    as_json: BenchJsonOpt = False,
) -> None:
    """Benchmark fidelity, speed and forecaster cost; write results.json, results.md and charts.

    Fidelity: PSNR/SSIM of every method at 14 and 10 of 50 real passes against the 50-step output.

    Speed: wall-clock speedup on a mid-size FLUX transformer, next to its Amdahl limit.

    Cost: forecaster time and memory at FLUX-1024² and Wan-480p feature sizes.

    Exits 1 if a sanity check fails (non-finite numbers, inexact NFE, no speedup).

    [bold]Examples[/]

      spectrum bench --quick

      spectrum bench --models tiny-flux,tiny-wan --out bench/

      spectrum bench --quick --json | jq '.speed.rows[].speedup'
    """
    from .context import quiet_libraries

    with cli_errors():
        names = [n.strip() for item in models or [] for n in item.split(",") if n.strip()] or None
        from spectrum_core.bench import SuiteOptions, run_suite
        from spectrum_core.bench.models import resolve_models

        try:
            resolve_models(names, quick)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        quiet_libraries()
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            err.print("[yellow]matplotlib is not installed: no charts[/] (pip install 'spectrum-diffusion[bench]').")
        options = SuiteOptions(quick=quick, out=out, models=names, samples=samples,
                               command=_command(quick, out, names, samples))
        err.print(f"[bold]{options.command}[/] → {out}/")
        results = run_suite(options, log=lambda line: err.print(line, markup=False, highlight=False, soft_wrap=True))
        for row in results.get("speed", {}).get("rows", []):
            err.print(f"speed {row['method']} @{row['budget']}: {row['speedup']:.2f}x (Amdahl limit "
                      f"{row['amdahl_limit']:.2f}x, {row['ratio_to_limit']:.2f} of it)", soft_wrap=True)
        failed = [c for c in results["checks"] if not c["ok"]]
        for c in results["checks"]:
            mark = "[green]ok[/]" if c["ok"] else "[bold red]FAILED[/]"
            err.print(f"{mark} {c['check']}" + (f" — {c['detail']}" if c["detail"] and not c["ok"] else ""),
                      soft_wrap=True)
        err.print(f"Wrote {out / 'results.json'}, {out / 'results.md'}"
                  + (f" and {len(results['charts'])} chart(s)" if results["charts"] else "")
                  + f" in {results['seconds'] / 60:.1f} min.", soft_wrap=True)
        if as_json:
            typer.echo((out / "results.json").read_text().rstrip())
        if failed:
            raise typer.Exit(code=EXIT_FAILED)
