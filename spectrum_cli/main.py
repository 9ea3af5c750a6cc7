"""`spectrum`: generate images and videos with diffusers pipelines, 3.5-5x faster with Spectrum.

Wiring only: the Typer app, its root options (--version, -q/--quiet), the commands registered from
their modules, and the entry point, which turns SIGTERM into Ctrl-C and every usage error Click finds
while parsing (`--nfe abc`, an unknown option) into the same one line and exit code 2 as ours.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Annotated, Any

import typer
from typer import _click

from . import __version__
from .errors import EXIT_INTERRUPTED, EXIT_USAGE, print_error
from .options import Command, Group


# Options of the root command that a user may type after the subcommand (`spectrum gen ... -q`).
_ROOT_OPTIONS = ("-q", "--quiet", "--version")


class OneLineErrors(Group):
    """Click's parse errors as one line on stderr (instead of Typer's boxed panel), same exit codes."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except _click.exceptions.NoArgsIsHelpError as exc:  # `spectrum gen` alone: its help
            if not standalone_mode:
                raise
            exc.show()
            sys.exit(exc.exit_code)
        except _click.exceptions.ClickException as exc:
            if not standalone_mode:
                raise
            where = getattr(getattr(exc, "ctx", None), "command_path", None)
            hint = f" (see `{where} --help`)" if where and isinstance(exc, _click.exceptions.UsageError) else ""
            if isinstance(exc, _click.exceptions.NoSuchOption) and exc.option_name in _ROOT_OPTIONS and where:
                hint = f" ({exc.option_name} is an option of `spectrum` itself: `spectrum {exc.option_name} " \
                       f"{where.split(' ', 1)[-1]} ...`)"
            print_error("Error", " ".join(exc.format_message().split()) + hint)
            sys.exit(exc.exit_code if exc.exit_code else EXIT_USAGE)
        except typer.Abort:
            if not standalone_mode:
                raise
            print_error("Error", "aborted")
            sys.exit(EXIT_INTERRUPTED)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    name="spectrum",  # help: the root callback's docstring
    cls=OneLineErrors,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"spectrum {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, metavar="",
                                          help="Print the version and exit.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", metavar="",
                                        help="Print only errors (and --json data): no progress, tables or "
                                        "\"wrote\" lines.")] = False,
) -> None:
    """Generate images and videos with diffusion transformers, 3.5-5x faster with Spectrum
    (training-free forecasting of the last transformer block's features).

    [bold]Examples[/]

      spectrum gen "a red circle on a navy background"

      spectrum ab "a fox in the snow" -m flux --nfe 14

      spectrum presets
    """
    from .render import set_quiet

    set_quiet(quiet)


def _register() -> None:
    from .batch import batch
    from .bench import bench
    from .gen import ab, gen
    from .grid import grid
    from .presets import presets_app

    for command in (gen, ab, batch, grid):
        app.command(cls=Command, no_args_is_help=True)(command)
    app.command(cls=Command)(bench)
    app.add_typer(presets_app, name="presets", cls=Group)
    if importlib.util.find_spec(f"{__package__}.calibrate") is not None:  # `spectrum calibrate`, once it exists
        from .calibrate import calibrate

        app.command(cls=Command)(calibrate)


_register()


def main() -> None:
    """Console-script entry point (`spectrum`): SIGTERM behaves like Ctrl-C (cleanup runs, exit 130)."""
    from spectrum_core.app.signals import sigterm_as_interrupt

    with sigterm_as_interrupt():
        app()


if __name__ == "__main__":
    main()
