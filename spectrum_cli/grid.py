"""`spectrum grid`: the full-step output next to each method at one budget, for a few prompts, as one PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .context import MODEL_OPTIONS, ModelChoice, load
from .errors import UsageError, cli_errors
from .options import JsonOpt, OverwriteOpt, default_note, knob_options, with_options
from .render import err, safe

# The knobs a grid varies by: the budget and the call; each column sets its own method.
GRID_KNOBS = knob_options(("nfe", "alpha", "steps", "seed", "height", "width", "frames", "guidance", "profile"))

PromptsArg = Annotated[list[str], typer.Argument(help="One or more prompts, one grid row each.",
                                                 show_default=False)]
MethodsOpt = Annotated[str, typer.Option(
    "--methods", help="Columns after the full-step output, comma-separated: spectrum, taylor, reuse.")]
CellOpt = Annotated[int, typer.Option("--cell", help="Height of each picture in the grid, pixels.", min=16)]
GridOutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="The PNG to write. " + default_note("outputs/grid_<model>_<budget>.png"), show_default=False,
    dir_okay=False)]


@with_options(MODEL_OPTIONS, GRID_KNOBS)
def grid(prompts: PromptsArg, methods: MethodsOpt = "spectrum,taylor,reuse", cell: CellOpt = 128,
         out: GridOutOpt = None, overwrite: OverwriteOpt = False, as_json: JsonOpt = False, *,
         choice: ModelChoice, knobs: dict[str, Any]) -> None:
    """Compare methods by eye: one row per prompt, the full-step output, then each method at the same
    budget, with PSNR against the full-step output under each picture (videos: first, middle and last
    frames).

    [bold]Examples[/]

      spectrum grid "a red circle on a navy background" "a green triangle on a white background" --nfe 10

      spectrum grid "a fox in the snow" -m flux --nfe 14 --methods spectrum,taylor -o fox_grid.png
    """
    from spectrum_core.app import media
    from spectrum_core.app.grid import GRID_METHODS, knobs_for, method_grid

    from spectrum_core.app.outputs import DEFAULT_OUT_DIR, check_output_path
    from spectrum_core.app.request import DEFAULT_SEED, build_job

    with cli_errors():
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        bad = [m for m in chosen if m not in GRID_METHODS]
        if bad or not chosen:
            raise UsageError(f"--methods {methods!r}: choose from {', '.join(GRID_METHODS)} (comma-separated).")
        preset = choice.preset()
        seed = DEFAULT_SEED if knobs["seed"] is None else knobs["seed"]
        knobs = {k: v for k, v in knobs.items() if v is not None and k != "seed"}
        for p in prompts:  # bad requests fail here, before the model loads
            for m in chosen:
                build_job(preset, p, knobs_for(m, knobs), seed=seed, method=m)
        if out is None:
            nfe, alpha = knobs.get("nfe"), knobs.get("alpha")
            budget = f"nfe{nfe}" if nfe is not None else f"a{alpha:g}" if alpha is not None else "default"
            out = DEFAULT_OUT_DIR / f"grid_{preset.name}_{budget}.png"
        if out.suffix.lower() != ".png":
            raise UsageError(f"--out {out}: the grid is a PNG; use a name ending in .png.")
        check_output_path(out, overwrite)
        runner = choice.runner(preset)
        load(runner)
        total = len(prompts) * (len(chosen) + 1)
        done = [0]

        def progress(prompt: str, method: str) -> None:
            done[0] += 1
            err.print(f"[dim]{done[0]}/{total}[/] {safe(method)}: {safe(prompt)}", highlight=False)

        result = method_grid(runner, prompts, methods=chosen, seed=seed, cell=cell, on_run=progress, **knobs)
        meta = {"model": preset.name, "seed": seed, **result.to_dict()}
        media.save_png(out, result.image, meta, overwrite=overwrite)
        for row in result.rows:
            full = row[0]
            parts = [f"{c.method} {c.nfe}/{c.steps}: {c.psnr:.1f} dB" for c in row[1:]]
            err.print(f"{safe(full.prompt)} — " + ", ".join(parts), highlight=False, soft_wrap=True)
        err.print(f"[green]wrote[/] {safe(out)}")
        if as_json:
            typer.echo(json.dumps({**meta, "output": str(out)}))
