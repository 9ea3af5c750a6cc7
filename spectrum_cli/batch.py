"""`spectrum batch`: a thin command over spectrum_core.app.batch (reading, checking, planning and
running a prompt file). This module only parses options, draws progress and the summary on stderr,
prints each manifest record on stdout with --json, and maps the outcome to an exit code."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from spectrum_core.app import batch as batch_lib
from spectrum_core.app import media
from spectrum_core.app.outputs import DEFAULT_OUT_DIR

from . import __version__
from .context import MODEL_OPTIONS, ModelChoice, load
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


def _progress_generate(runner: Any, job: Any) -> Any:
    label = job.method if job.spectrum is not None else "baseline"
    with step_progress([label], job.steps) as update:
        return runner.generate(job, on_step=lambda info: update(label, info))


@with_options(MODEL_OPTIONS, KNOB_OPTIONS)
def batch(
    file: FileArg,
    out: BatchOutOpt = DEFAULT_OUT_DIR,
    allow_outside: AllowOutsideOpt = False,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
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
        runner = choice.runner(preset)
        plan = batch_lib.plan_batch(items, preset, out, overwrite, source=file)
        if plan.skipped:
            err.print(f"Resuming: {plan.skipped} of {len(items)} prompts already done "
                      f"(see {safe(str(plan.manifest))}).")
        if plan.todo:
            load(runner)

        def on_item(n: int, total: int, item: batch_lib.BatchItem) -> None:
            err.print(f"[bold]({n}/{total})[/] line {item.line}: {safe(item.job.prompt)}")

        def on_record(rec: dict[str, Any], error: Exception | None) -> None:
            if error is not None:
                err.print(f"[bold red]failed:[/] {safe(describe(error))}")
            if as_json:
                shown = dict(rec)
                if shown.get("output") is not None:  # on stdout: a path usable from here
                    shown["output"] = os.path.join(str(out), shown["output"])
                typer.echo(media.dumps(shown))

        summary = batch_lib.run_batch(plan, runner, preset, overwrite=overwrite,
                                      generator=f"spectrum {__version__}", generate=_progress_generate,
                                      on_item=on_item, on_record=on_record)
        err.print(f"{summary.generated} generated, {summary.skipped} skipped (done before), {summary.failed} "
                  f"failed; manifest: {safe(str(plan.manifest))}")
        if summary.failed:
            raise typer.Exit(code=EXIT_FAILED)
