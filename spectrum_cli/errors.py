"""The one place where exceptions become what a user sees: one line on stderr and an exit code.

Exit codes (documented in README.md):
    0    success
    1    a generation failed (or, in `batch`, at least one prompt failed)
    2    bad usage: unknown model, unattainable NFE, bad size, missing weights, unwritable output, ...
    130  interrupted (Ctrl-C); no partial output file is left behind

Set SPECTRUM_DEBUG=1 to see the traceback as well.
"""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager
from typing import Iterator

import typer
from rich.markup import escape

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """Bad command-line input found by the CLI itself (exit 2)."""


def debug_enabled() -> bool:
    return os.environ.get("SPECTRUM_DEBUG", "") not in ("", "0")


def is_usage_error(exc: BaseException) -> bool:
    from spectrum_core.app.presets import PresetError
    from spectrum_core.app.request import RequestError

    return isinstance(exc, (UsageError, PresetError, RequestError, FileExistsError))


def describe(exc: BaseException) -> str:
    """The first line of an exception's message, prefixed with its type when that adds meaning."""
    text = (str(exc).strip().splitlines() or [""])[0]
    if is_usage_error(exc):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextmanager
def cli_errors() -> Iterator[None]:
    """Wrap a command body: typer.Exit passes through, everything else becomes one line and a code."""
    from .render import err

    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        err.print("[yellow]Interrupted[/]; no partial output was written.")
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - this is the boundary
        if debug_enabled():
            err.print(traceback.format_exc(), markup=False)
        code = EXIT_USAGE if is_usage_error(exc) else EXIT_FAILED
        prefix = "Error" if code == EXIT_USAGE else "Generation failed"
        err.print(f"[bold red]{prefix}:[/] {escape(describe(exc))}", soft_wrap=True)
        raise typer.Exit(code=code) from None
