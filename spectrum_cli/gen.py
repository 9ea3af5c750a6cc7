"""`spectrum gen` and `spectrum ab`: one generation (or a baseline/accelerated comparison), read top
to bottom — check the request, plan the outputs, load, run, write the files as one set, report."""

from __future__ import annotations

import statistics
from typing import Annotated, Any

import typer

from spectrum_core.app import distributed, media, outputs
from spectrum_core.app.request import build_job, steps_run

from . import __version__
from .context import MODEL_OPTIONS, ContextParallelOpt, ModelChoice, launch, load, quiet_libraries
from .errors import UsageError, cli_errors
from .options import KNOB_OPTIONS, OUT_PANEL, CompareOpt, JsonOpt, OutOpt, OverwriteOpt, PromptArg, with_options
from .render import err, safe, step_progress, summary_table

GENERATOR = f"spectrum {__version__}"

PairsOpt = Annotated[int, typer.Option(
    "--pairs", help="Baseline/accelerated pairs to time; the speedup reported is their median, with the "
    "range. The files are the first pair's.", min=1, max=100, rich_help_panel=OUT_PANEL)]
def _run(prompt: str, choice: ModelChoice, knobs: dict[str, Any], out: str | None, overwrite: bool,
         as_json: bool, compare: bool, pairs: int = 1, context_parallel: str | None = None) -> None:
    with cli_errors():
        preset = choice.preset()
        job = build_job(preset, prompt, knobs)
        if compare and job.spectrum is None:
            raise UsageError("--compare runs the baseline against an accelerated run; drop --method none.")
        world, choice = launch(context_parallel, choice, "gen")
        if world.context is not None and compare:
            raise UsageError("--context-parallel splits one generation over the processes; drop --compare.")
        runner = choice.runner(preset)
        if world.context is not None:
            with distributed.process_group(world, runner.device) as mesh:
                planned = outputs.plan_outputs(preset, job, out, compare, overwrite) if world.is_main else None
                if world.is_main:
                    load(runner)
                else:  # only rank 0 draws
                    quiet_libraries()
                    runner.pipe  # noqa: B018 - loads the pipeline
                distributed.enable_context_parallel(runner.pipe, world, mesh)
                if not world.is_main:  # every rank computes its shard of the same job and seed
                    runner.generate(job)
                    return
                _generate_and_report(preset, job, runner, planned, overwrite, as_json, compare, pairs)
            return
        planned = outputs.plan_outputs(preset, job, out, compare, overwrite)
        load(runner)
        _generate_and_report(preset, job, runner, planned, overwrite, as_json, compare, pairs)


def _generate_and_report(preset: Any, job: Any, runner: Any, planned: Any, overwrite: bool, as_json: bool,
                         compare: bool, pairs: int) -> None:
    comparison, speedups = None, []
    if compare:
        for n in range(pairs):
            label = "" if pairs == 1 else f" {n + 1}/{pairs}"
            with step_progress([f"baseline{label}", f"{job.method}{label}"], steps_run(preset, job)) as update:
                pair = runner.compare(job, on_step=lambda name, info: update(f"{name}{label}", info),
                                      warmup=n == 0)
            comparison = comparison or pair
            speedups.append(pair.speedup)
        result = comparison.accelerated
    else:
        label = job.method if job.spectrum is not None else "baseline"
        with step_progress([label], steps_run(preset, job)) as update:
            result = runner.generate(job, on_step=lambda info: update(label, info))
    written = outputs.save(preset, result, planned, overwrite, GENERATOR, comparison,
                           _record(preset, result, comparison, planned, speedups))
    rec = _record(preset, result, comparison, written, speedups)
    err.print(summary_table(result, comparison, speedups))
    for path in written.paths():
        for file in media.output_files(path):
            err.print(f"[green]wrote[/] {safe(file)}")
    if as_json:
        typer.echo(media.dumps(rec))


def _record(preset: Any, result: Any, comparison: Any, files: outputs.Outputs, speedups: list[float]) -> dict:
    """The --json record; over several pairs the speedup is their median, with the range."""
    rec = outputs.record(preset, result, files.main, comparison, files)
    if len(speedups) > 1:
        fin = media.finite_or_none
        rec.update(pairs=len(speedups), speedup=fin(statistics.median(speedups)),
                   speedup_min=fin(min(speedups)), speedup_max=fin(max(speedups)))
    return rec


@with_options(MODEL_OPTIONS, KNOB_OPTIONS)
def gen(prompt: PromptArg, out: OutOpt = None, overwrite: OverwriteOpt = False, as_json: JsonOpt = False,
        compare: CompareOpt = False, context_parallel: ContextParallelOpt = None, *, choice: ModelChoice,
        knobs: dict[str, Any]) -> None:
    """Generate one image or video, accelerated with Spectrum.

    [bold]Examples[/]

      spectrum gen "a red circle on a navy background"

      spectrum gen "a fox in the snow" -m flux --nfe 14 --seed 7 -o fox.png

      spectrum gen "waves at dusk" -m wan --alpha 3.0 --offload --json

      spectrum gen "a fox" -m flux --model-path ~/models/FLUX.1-dev --compare
    """
    _run(prompt, choice, knobs, out, overwrite, as_json, compare, context_parallel=context_parallel)


@with_options(MODEL_OPTIONS, KNOB_OPTIONS)
def ab(prompt: PromptArg, out: OutOpt = None, overwrite: OverwriteOpt = False, as_json: JsonOpt = False,
       pairs: PairsOpt = 3, *, choice: ModelChoice, knobs: dict[str, Any]) -> None:
    """A/B: the full-step baseline against the accelerated run, timed over a few pairs.

    Prints the median measured speedup (with its range over the pairs) and PSNR/SSIM (LPIPS when its
    weights are on this machine) and writes both outputs plus a side-by-side (left: baseline, right:
    accelerated).

    [bold]Examples[/]

      spectrum ab "a red circle on a navy background" --nfe 14

      spectrum ab "a fox in the snow" -m flux --alpha 3.0 --pairs 5 --json
    """
    _run(prompt, choice, knobs, out, overwrite, as_json, compare=True, pairs=pairs)
