"""`spectrum presets` (the table, on stdout) and `spectrum presets show NAME`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from spectrum_core.app.presets import DEFAULT_MODEL, Preset, list_presets, load_preset, load_preset_file

from .errors import cli_errors
from .options import Command, JsonOpt
from .render import preset_detail, presets_table, stdout_console

presets_app = typer.Typer(no_args_is_help=False)  # help: the callback's docstring


def weights_status(preset: Preset) -> str:
    """Whether a preset's weights are here: built on use (tiny), cached / not downloaded (hub), local / missing."""
    from spectrum_core.app.request import WeightsMissing, check_weights

    if preset.source_kind == "tiny":
        return "built on use"
    try:
        check_weights(preset)
    except WeightsMissing:
        return "[yellow]not downloaded[/]" if preset.source_kind == "hub" else "[yellow]missing[/]"
    return "[green]cached[/]" if preset.source_kind == "hub" else "[green]local[/]"


@presets_app.callback(invoke_without_command=True)
def presets(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the model presets (`spectrum presets show NAME` for one).

    [bold]Examples[/]

      spectrum presets

      spectrum presets --json | jq -r '.[].name'
    """
    if ctx.invoked_subcommand is not None:
        return
    with cli_errors():
        all_presets = list_presets()
        if as_json:
            typer.echo(json.dumps([p.to_dict() for p in all_presets]))
            return
        status = {p.name: weights_status(p) for p in all_presets}
        out = stdout_console()
        out.print(presets_table(all_presets, status, DEFAULT_MODEL))
        out.print("Use one with [bold]spectrum gen PROMPT -m NAME[/]; bring your own with --preset-file FILE "
                  "or --model-path DIR.")


@presets_app.command("show", cls=Command, no_args_is_help=True)
def presets_show(
    name: Annotated[str, typer.Argument(help="A preset name, or a path to a preset .toml file.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Show every setting of one preset.

    [bold]Examples[/]

      spectrum presets show wan

      spectrum presets show ./my-model.toml --json
    """
    with cli_errors():
        preset = load_preset_file(Path(name)) if name.endswith(".toml") else load_preset(name)
        if as_json:
            typer.echo(json.dumps(preset.to_dict()))
        else:
            stdout_console().print(preset_detail(preset))
