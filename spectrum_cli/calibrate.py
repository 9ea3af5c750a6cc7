"""`spectrum calibrate`: measure a model and write a profile of where its real passes should go
(a thin command over spectrum_core.app.calibrate and spectrum_core.app.profiles)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from spectrum_core.app import media

from .context import MODEL_OPTIONS, ModelChoice, load
from .errors import UsageError, cli_errors
from .options import GEN_PANEL, OUT_PANEL, JsonOpt, with_options
from .render import err, safe

NfeListOpt = Annotated[str, typer.Option(
    "--nfe", help="Budgets to calibrate, in real passes per run, comma-separated (e.g. 10,14).",
    rich_help_panel=GEN_PANEL, show_default=True)]
CalStepsOpt = Annotated[Optional[int], typer.Option(
    "--steps", help="Denoising steps the profile is for. \\[default: the preset's]", rich_help_panel=GEN_PANEL,
    show_default=False)]
CalGuidanceOpt = Annotated[Optional[float], typer.Option(
    "--guidance", help="Guidance the profile is for. \\[default: the preset's]", rich_help_panel=GEN_PANEL,
    show_default=False)]
PromptsOpt = Annotated[Optional[Path], typer.Option(
    "--prompts", help="A text file of calibration prompts, one a line (the first records the trajectory, "
    "the others choose the forecaster). \\[default: prompts no benchmark uses]", rich_help_panel=GEN_PANEL,
    dir_okay=False, show_default=False)]
FastOpt = Annotated[bool, typer.Option(
    "--fast", help="About a third of the runs: amplification probed every third step, one selection sample, "
    "two candidate forecasters. The choice is noisier.", rich_help_panel=GEN_PANEL)]
RefineOpt = Annotated[Optional[int], typer.Option(
    "--refine-sweeps", help="Closed-loop refinement sweeps after the optimiser (each tries moving every real "
    "step by up to two steps, scored on 6 more samples); 0 turns it off. \\[default: 2, 0 with --fast]",
    rich_help_panel=GEN_PANEL, show_default=False)]
ProfileOutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="Where to write the profile. \\[default: the user's profile folder, found "
    "automatically by gen/ab/batch/grid/bench]", rich_help_panel=OUT_PANEL, dir_okay=False, show_default=False)]


def _steps_text(segments: Any) -> str:
    """Real steps as the command prints them: one comma list per expert segment, segments split by /."""
    return "/".join(",".join(map(str, s)) for s in segments)


def _refined_note(record: Any) -> str:
    if not record:
        return ""
    if record["kept"]:
        return (f"; refined from {_steps_text(record['optimiser_steps'])} "
                f"({record['refinement_psnr_before']:.2f} -> {record['refinement_psnr_after']:.2f} dB on the "
                "refinement samples)")
    if record["refined_steps"] == record["optimiser_steps"]:
        return "; no refining move helped"
    return "; a refined schedule did worse on the selection samples and was not kept"


def _budgets(text: str) -> list[int]:
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(f"--nfe takes whole numbers of real passes separated by commas, e.g. 10,14; got {text!r}.")
    return [int(p) for p in parts]


@with_options(MODEL_OPTIONS)
def calibrate(nfe: NfeListOpt = "10,14", steps: CalStepsOpt = None, guidance: CalGuidanceOpt = None,
              prompts: PromptsOpt = None, fast: FastOpt = False, refine_sweeps: RefineOpt = None,
              out: ProfileOutOpt = None,
              as_json: JsonOpt = False, *, choice: ModelChoice) -> None:
    """Calibrate a model: place its real passes where forecast errors cost most, for each budget.

    Records one full-step run, measures how much an error at each step changes the output (one short
    perturbed run per step), picks the real steps for each budget by an exact optimisation, chooses the
    forecaster on other prompts, refines the steps in closed loop on yet others, and writes a profile that
    gen, ab, batch, grid and bench then use automatically for that model, step count, guidance and budget
    (--profile none turns it off).

    [bold]Examples[/]

      spectrum calibrate -m shapes --nfe 10,14

      spectrum calibrate -m moving --nfe 8 --steps 30 --fast -o moving-30.json
    """
    from spectrum_core.app import calibrate as cal
    from spectrum_core.app import profiles

    with cli_errors():
        preset = choice.preset()
        budgets = _budgets(nfe)
        prompt_list = cal.read_prompts(prompts) if prompts is not None else None
        plan = cal.plan_calibration(preset, budgets, steps=steps, guidance=guidance, prompts=prompt_list, fast=fast,
                                    sweeps=refine_sweeps)
        job = plan.selection[0]
        from spectrum_core.app.request import build_job

        size = build_job(preset, job[0], {"method": "none", "steps": plan.steps, "guidance": plan.guidance})
        key = profiles.match_key(preset, plan.steps, plan.guidance, size.height, size.width, size.frames)
        target = out if out is not None else profiles.user_dir() / f"{preset.name}-s{plan.steps}.json"
        if target.exists():
            profiles.load_profile(target)  # only ever replace a profile (refuses any other file)
        runner = choice.runner(preset)
        err.print(f"Calibrating {safe(plan.describe())}")
        load(runner)
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err, transient=True, disable=not err.is_terminal) as bar:
            task = bar.add_task("calibrating", total=plan.runs)

            def progress(p: Any) -> None:
                bar.update(task, completed=p.done, description=f"{p.stage}: {safe(p.note)}")

            measured = cal.calibrate(plan, runner.pipe, progress=progress)
        profile = profiles.make_profile(preset, key, measured)
        written = profiles.write_profile(profile, target)
        c = measured["calibration"]
        for k, entry in measured["budgets"].items():
            err.print(f"  {k} of {plan.steps}: {entry['forecaster']} on steps {_steps_text(entry['real_steps'])}: "
                      f"{entry['psnr']:.2f} dB vs reference {entry['reference_psnr']:.2f} dB "
                      f"({entry['gain_db']:+.2f} dB on {len(c['selection'])} selection sample(s))"
                      + _refined_note(entry.get("refinement")))
        err.print(f"Cost: {c['runs']} pipeline runs in {c['seconds']:.1f} s ({c['mode']} mode)")
        err.print(f"[green]wrote[/] {safe(written)} (profile {safe(profile['id'])})")
        if as_json:
            typer.echo(media.dumps({"path": str(written), **profile}))
