"""`spectrum grid`: the full-step output next to each method at one budget, for a few prompts, as one PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from .errors import UsageError, cli_errors
from .options import (AlphaOpt, DeviceOpt, Device, DtypeOpt, Dtype, GuidanceOpt, ThreadsOpt, HeightOpt, FramesOpt, JsonOpt,
                      ModelOpt, ModelPathOpt, NfeOpt, OverwriteOpt, PresetFileOpt, SeedOpt, StepsOpt, WidthOpt)
from .render import err

PromptsArg = Annotated[list[str], typer.Argument(help="One or more prompts, one grid row each.",
                                                 show_default=False)]
MethodsOpt = Annotated[str, typer.Option(
    "--methods", help="Columns after the full-step output, comma-separated: spectrum, taylor, reuse.")]
CellOpt = Annotated[int, typer.Option("--cell", help="Height of each picture in the grid, pixels.", min=16)]
GridOutOpt = Annotated[Optional[Path], typer.Option(
    "--out", "-o", help="The PNG to write. [default: outputs/grid_<model>_<budget>.png]", show_default=False,
    dir_okay=False)]


def grid(
    prompts: PromptsArg,
    model: ModelOpt = None,
    preset_file: PresetFileOpt = None,
    model_path: ModelPathOpt = None,
    nfe: NfeOpt = None,
    alpha: AlphaOpt = None,
    methods: MethodsOpt = "spectrum,taylor,reuse",
    steps: StepsOpt = None,
    seed: SeedOpt = 42,
    height: HeightOpt = None,
    width: WidthOpt = None,
    frames: FramesOpt = None,
    guidance: GuidanceOpt = None,
    cell: CellOpt = 128,
    device: DeviceOpt = Device.auto,
    dtype: DtypeOpt = Dtype.auto,
    threads: ThreadsOpt = None,
    out: GridOutOpt = None,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Compare methods by eye: one row per prompt, the full-step output, then each method at the same
    budget, with PSNR against the full-step output under each picture (videos: first, middle and last
    frames).

    [bold]Examples[/]

      spectrum grid "a red circle on a navy background" "a green triangle on a white background" --nfe 10

      spectrum grid "a fox in the snow" -m flux --nfe 14 --methods spectrum,taylor -o fox_grid.png
    """
    from spectrum_core.app import media
    from spectrum_core.app.grid import GRID_METHODS, method_grid

    from .main import ModelChoice, _load, check_output_path

    with cli_errors():
        chosen = [m.strip() for m in methods.split(",") if m.strip()]
        bad = [m for m in chosen if m not in GRID_METHODS]
        if bad or not chosen:
            raise UsageError(f"--methods {methods!r}: choose from {', '.join(GRID_METHODS)} (comma-separated).")
        choice = ModelChoice(model, preset_file, model_path, device.value, dtype.value, False, threads)
        preset = choice.preset()
        knobs = {k: v for k, v in dict(nfe=nfe, alpha=alpha, steps=steps, height=height, width=width,
                                        frames=frames, guidance=guidance).items() if v is not None}
        from spectrum_core.app.request import build_job

        for p in prompts:  # bad requests fail here, before the model loads
            for m in chosen:
                build_job(preset, p, seed=seed, method=m, **knobs)
        if out is None:
            budget = f"nfe{nfe}" if nfe is not None else f"a{alpha:g}" if alpha is not None else "default"
            out = Path("outputs") / f"grid_{preset.name}_{budget}.png"
        if out.suffix.lower() != ".png":
            raise UsageError(f"--out {out}: the grid is a PNG; use a name ending in .png.")
        check_output_path(out, overwrite)
        runner = choice.runner(preset)
        _load(runner)
        total = len(prompts) * (len(chosen) + 1)
        done = [0]

        def progress(prompt: str, method: str) -> None:
            done[0] += 1
            err.print(f"[dim]{done[0]}/{total}[/] {escape(method)}: {escape(prompt)}", highlight=False)

        result = method_grid(runner, prompts, methods=chosen, seed=seed, cell=cell, on_run=progress, **knobs)
        meta = {"model": preset.name, "seed": seed, **result.to_dict()}
        media.save_png(out, result.image, meta, overwrite=overwrite)
        for row in result.rows:
            full = row[0]
            parts = [f"{c.method} {c.nfe}/{c.steps}: {c.psnr:.1f} dB" for c in row[1:]]
            err.print(f"{escape(full.prompt)} — " + ", ".join(parts), highlight=False, soft_wrap=True)
        err.print(f"[green]wrote[/] {escape(str(out))}")
        if as_json:
            typer.echo(json.dumps({**meta, "output": str(out)}))
