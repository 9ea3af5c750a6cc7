"""The one place where exceptions become what a user sees: one line on stderr and an exit code.

Exit codes (documented in README.md):
    0    success
    1    a generation failed (or, in `batch`, at least one prompt failed)
    2    bad usage: unknown model or option, unattainable NFE, bad size, missing weights, unwritable output, ...
    130  interrupted (Ctrl-C or SIGTERM); no partial output file is left behind

The library's errors carry data (`field`, `value`, `expected`) and name settings in backticks
(`nfe`); here they are worded as flags (--nfe). Set SPECTRUM_DEBUG=1 to see the traceback as well.
"""

from __future__ import annotations

import os
import re
import traceback
from contextlib import contextmanager
from typing import Iterator

import typer

from .options import flag

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

# Settings the CLI has a flag for, besides every knob of build_job (which all have one).
_CLI_SETTINGS = {"model", "preset_file", "model_path", "device", "dtype", "offload", "offload_mode", "lora", "compile",
                 "forecast_state", "batch_size", "context_parallel", "threads", "out",
                 "overwrite", "compare", "pairs", "allow_outside"}


class UsageError(Exception):
    """Bad command-line input found by the CLI itself (exit 2)."""


def debug_enabled() -> bool:
    return os.environ.get("SPECTRUM_DEBUG", "") not in ("", "0")


def is_usage_error(exc: BaseException) -> bool:
    from spectrum_core.app.presets import InputError
    from spectrum_core.method.config import ConfigError

    from spectrum_core.app.distributed import DistributedError

    return isinstance(exc, (UsageError, InputError, ConfigError, DistributedError, FileExistsError))


def _has_flag(name: str) -> bool:
    from spectrum_core.app.request import KNOBS

    return name in KNOBS or name in _CLI_SETTINGS


def worded(text: str, flags: bool = True) -> str:
    """A library message with its `setting` names as flags (--setting), or as plain names."""
    return re.sub(r"`(\w+)`", lambda m: (flag(m[1]) if flags else m[1]) if _has_flag(m[1]) else m[0], text)


def _config_message(exc: BaseException, flags: bool) -> str:
    """SpectrumConfig's ConfigError, worded from its data."""
    name = flag(exc.field) if flags and _has_flag(exc.field) else exc.field
    other = re.fullmatch(r"unset when (\w+) is set", exc.expected or "")
    if other:
        return f"Pass either {flag(other[1]) if flags else other[1]} or {name}, not both."
    return f"{name} must be {worded(exc.expected, flags)}, got {exc.value!r}."


def describe(exc: BaseException, flags: bool = True) -> str:
    """One line for an exception: a usage error's whole message (control characters escaped), or the
    first line of any other error prefixed with its type. `flags`: word settings as command-line flags
    (False: as the names a batch file's keys use)."""
    from spectrum_core.method.config import ConfigError

    from .render import plain

    if isinstance(exc, ConfigError) and getattr(exc, "expected", None):
        return _config_message(exc, flags)
    if is_usage_error(exc):
        return plain(worded(str(exc).strip(), flags)) or type(exc).__name__
    text = (str(exc).strip().splitlines() or [""])[0]
    return plain(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def print_error(prefix: str, message: str) -> None:
    from rich.markup import escape

    from .render import errors

    errors.print(f"[bold red]{prefix}:[/] {escape(message)}", soft_wrap=True)


@contextmanager
def cli_errors() -> Iterator[None]:
    """Wrap a command body: typer.Exit passes through, everything else becomes one line and a code."""
    from .render import errors

    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        errors.print("[yellow]Interrupted[/]; no partial output was written.")
        raise typer.Exit(code=EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - this is the boundary
        if debug_enabled():
            errors.print(traceback.format_exc(), markup=False)
        code = EXIT_USAGE if is_usage_error(exc) else EXIT_FAILED
        print_error("Error" if code == EXIT_USAGE else "Generation failed", describe(exc))
        raise typer.Exit(code=code) from None
