"""`spectrum batch`: a thin command over spectrum_core.app.batch (reading, checking, planning and
running a prompt file). This module only parses options, draws progress and the summary on stderr,
prints each manifest record on stdout with --json, and maps the outcome to an exit code."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from spectrum_core.app import batch as batch_lib
from spectrum_core.app import distributed, media
from spectrum_core.app.outputs import DEFAULT_OUT_DIR
from spectrum_core.app.request import steps_run

from . import __version__
from .context import MODEL_OPTIONS, ContextParallelOpt, ModelChoice, launch, load
from .errors import EXIT_FAILED, cli_errors, describe
from .options import KNOB_OPTIONS, OUT_PANEL, JsonOpt, OverwriteOpt, with_options
from .render import err, safe, step_progress

FileArg = Annotated[Path, typer.Argument(help="Prompts: one per line, or JSONL objects with overrides.",
                                         show_default=False)]
BatchOutOpt = Annotated[Path, typer.Option(
    "--out", "-o", "--out-dir", help="Folder for the outputs and results.jsonl.", file_okay=False,
    rich_help_panel=OUT_PANEL)]
AllowOutsideOpt = Annotated[bool, typer.Option(
    "--allow-outside", help="Let a line's \"out\" be an absolute path or leave the output folder with \"..\".",
    rich_help_panel=OUT_PANEL)]
BatchSizeOpt = Annotated[int, typer.Option(
    "--batch-size", help="Run up to N compatible lines (same settings, other prompts or seeds) as one pipeline "
    "call: more images per second on a GPU, more memory. Each line's output is its own; a failing call is "
    "retried line by line.", min=1, max=1024, show_default=True, rich_help_panel=OUT_PANEL)]


def _progress_generate(runner: Any, job: Any) -> Any:
    label = job.method if job.spectrum is not None else "baseline"
    with step_progress([label], steps_run(runner.preset, job)) as update:
        return runner.generate(job, on_step=lambda info: update(label, info))


@with_options(MODEL_OPTIONS, KNOB_OPTIONS)
def batch(
    file: FileArg,
    out: BatchOutOpt = DEFAULT_OUT_DIR,
    allow_outside: AllowOutsideOpt = False,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
    batch_size: BatchSizeOpt = 1,
    context_parallel: ContextParallelOpt = None,
    *,
    choice: ModelChoice,
    knobs: dict[str, Any],
) -> None:
    """Generate every prompt of a file with one model load; resumable.

    Each line is a prompt, or a JSON object: {"prompt": ..., "seed": 7, "size": "512x512", "nfe": 10,
    "out": "name.png"} (also steps, alpha, frames, fps, guidance, height, width). Options give the
    defaults. Every line is checked before the model loads. A line's "out" stays inside the output
    folder (unless --allow-outside). Each finished prompt's output and its line in OUT/results.jsonl
    (paths relative to OUT) are written together; re-running, from any folder, skips prompts already
    done. A failed prompt is recorded and the rest continue; the exit code is 1 if any failed.

    [bold]Examples[/]

      spectrum batch prompts.txt -o renders/

      spectrum batch jobs.jsonl -m flux --nfe 14 --json > results.ndjson
    """
    with cli_errors():
        preset = choice.preset()
        items = batch_lib.read_batch(file, preset, knobs, allow_outside=allow_outside)
        world, choice = launch(context_parallel, choice, "batch")
        if world.distributed and world.context is None:  # under torchrun: one process per device, LOCAL_RANK picks it
            from spectrum_core.app.runner import resolve_device

            choice = dataclasses.replace(choice, device=world.device(resolve_device(choice.device)))
        runner = choice.runner(preset)
        with distributed.process_group(world, runner.device) as mesh:
            _run(file, out, overwrite, as_json, world, preset, items, runner, allow_outside, batch_size, mesh)


def _run(file: Path, out: Path, overwrite: bool, as_json: bool, world: distributed.World, preset: Any,
         items: list[batch_lib.BatchItem], runner: Any, allow_outside: bool = False, batch_size: int = 1,
         mesh: Any = None) -> None:
    """Plan against the manifest, run this process's share, print the summary (rank 0, over all ranks).

    Every rank reads the manifest before any rank writes to it (the barrier), so all of them see the same
    pending lines and `distributed.share` splits them without overlap; a world of one runs them all."""
    say = err.print if world.is_main else (lambda *_a, **_k: None)
    plan = batch_lib.plan_batch(items, preset, out, overwrite, source=file, allow_outside=allow_outside)
    distributed.barrier(world)
    pending, done_before = len(plan.todo), plan.skipped
    if done_before:
        say(f"Resuming: {done_before} of {len(items)} prompts already done (see {safe(str(plan.manifest))}).")
    plan = dataclasses.replace(plan, todo=distributed.share(plan.todo, world))
    if world.distributed:
        say(f"{pending} prompts over {world.size} processes ({len(plan.todo)} on this one).")
    if plan.todo:
        if world.is_main:
            load(runner)
        else:  # quietly: only rank 0 draws
            from .context import quiet_libraries

            quiet_libraries()
            runner.pipe  # noqa: B018 - loads the pipeline
        distributed.enable_context_parallel(runner.pipe, world, mesh)  # nothing without --context-parallel

    def on_item(n: int, total: int, item: batch_lib.BatchItem) -> None:
        say(f"[bold]({n}/{total})[/] line {item.line}: {safe(item.job.prompt)}")

    passes = {"steps": 0, "real": 0}  # over the lines this process wrote, for the totals

    def on_record(rec: dict[str, Any], error: Exception | None) -> None:
        if error is None and isinstance(rec.get("steps"), int) and isinstance(rec.get("nfe"), int):
            # the steps that ran (strength < 1 runs fewer than requested): real plus forecast
            ran = len(rec.get("real_steps") or ()) + len(rec.get("forecast_steps") or ())
            passes["steps"] += ran or rec["steps"]
            passes["real"] += rec["nfe"]
        if error is not None:
            err.print(f"[bold red]failed:[/] line {rec.get('line')}: {safe(describe(error))}")
        if as_json:
            shown = dict(rec)
            if shown.get("output") is not None:  # on stdout: a path usable from here
                shown["output"] = os.path.join(str(out), shown["output"])
            typer.echo(media.dumps(shown))

    started = time.perf_counter()
    summary = batch_lib.run_batch(plan, runner, preset, overwrite=overwrite, generator=f"spectrum {__version__}",
                                  generate=_progress_generate if world.is_main else None,
                                  on_item=on_item, on_record=on_record, batch_size=batch_size,
                                  world=world if world.context is not None else None)
    counts = {"generated": summary.generated, "skipped": summary.skipped - plan.skipped, "failed": summary.failed,
              "seconds": time.perf_counter() - started, "writes": world.writes, **passes}
    totals = distributed.gather_to_main(counts, world)
    failed = summary.failed
    if world.is_main:
        writers = [t for t in totals if t["writes"]]  # a context group's lines count once
        total = {k: sum(t[k] for t in writers) for k in ("generated", "skipped", "failed", "steps", "real")}
        failed = total["failed"]
        wall = max(t["seconds"] for t in totals)
        rate = f", {total['generated'] / wall:.2f} per second over {world.size} processes" if world.distributed and wall > 0 else ""
        avoided = total["steps"] - total["real"]
        saved = f", {avoided} of {total['steps']} steps forecast (network passes avoided)" if total["steps"] else ""
        say(f"{total['generated']} generated, {done_before + total['skipped']} skipped (done before), "
            f"{failed} failed{rate}{saved}; manifest: {safe(str(plan.manifest))}")
    failed = _any_failed(failed, world)
    if failed:
        raise typer.Exit(code=EXIT_FAILED)


def _any_failed(failed: int, world: distributed.World) -> int:
    """Every rank exits with the same code: the number of failures over all ranks, shared by rank 0."""
    if not world.distributed:
        return failed
    import torch.distributed as dist

    box = [failed if world.is_main else 0]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])
