"""The command-line options, defined once.

The Spectrum options are generated from `SpectrumConfig`'s fields (name, type, and help from its
docstring's Args section) and the request's own knobs (`spectrum_core.app.request.JOB_KNOBS`) from a
small table here, so a field added to the config is a flag at once. `with_options` adds a group of
options to a command and hands their values to it as one keyword — `knobs` (a mapping for
`build_job`), `choice` (the model, see context.py) — so no command spells out thirty parameters.

Help texts escape rich markup: `\\[default: …]` would otherwise be swallowed as a markup tag.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from dataclasses import dataclass
from enum import Enum
from typing import Annotated, Any, Callable, Iterable, Mapping, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from spectrum_core.app.presets import METHODS
from spectrum_core.app.request import DEFAULT_SEED, JOB_KNOBS, SPECTRUM_KNOBS
from spectrum_core.method.config import SpectrumConfig

MODEL_PANEL, GEN_PANEL, SPECTRUM_PANEL, OUT_PANEL = "Model", "Generation", "Spectrum", "Output"

Method = Enum("Method", {m: m for m in METHODS}, type=str)  # spectrum, taylor, reuse, none


class Device(str, Enum):
    auto = "auto"
    cuda = "cuda"
    mps = "mps"
    cpu = "cpu"


class Dtype(str, Enum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


def flag(name: str) -> str:
    """The command-line flag of a setting: `tau_horizon` -> `--tau-horizon` (`forecaster` is --method)."""
    return "--method" if name == "forecaster" else "--" + name.replace("_", "-")


def default_note(text: str) -> str:
    """A visible `[default: text]` for a help string (escaped from rich markup)."""
    return f"\\[default: {text}]"


# --- Help text from SpectrumConfig's docstring ---------------------------------------------------------

def config_help() -> dict[str, str]:
    """Each SpectrumConfig field's description from the docstring's Args section, as one line of plain
    text, with ``literals`` unquoted and the other fields' names written as flags."""
    doc = inspect.getdoc(SpectrumConfig) or ""
    args = doc.split("Args:", 1)[1] if "Args:" in doc else ""
    entries = re.findall(r"^ {4}(\w+) \(.*?\):\n((?: {8}.*\n?)+)", args, flags=re.M)
    names = set(config_fields()) | {"forecaster"}
    out = {}
    for name, body in entries:
        text = " ".join(line.strip() for line in body.splitlines())
        text = re.sub(r"``(\w+)``", lambda m: flag(m[1]) if m[1] in names else m[1], text)
        out[name] = text.replace("``", "").replace("[", "\\[")
    return out


_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}


def scalar_type(field: dataclasses.Field) -> type | None:
    """The command-line type of a SpectrumConfig field (`int | None` -> int), or None for a structured
    one (a tuple of steps, which a profile fills in rather than a flag)."""
    text = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return _SCALARS.get(re.sub(r"\s*\|\s*None$", "", text.strip()))


def parse_steps(text: str) -> tuple[tuple[int, ...], ...]:
    """An explicit schedule: "0,1,2,5,9" (one segment) or "0,1,2/0,3" (one segment per expert)."""
    try:
        segments = tuple(tuple(int(x) for x in part.split(",") if x.strip()) for part in text.split("/"))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: write the real steps as whole numbers, e.g. 0,1,2,5,9 "
                                 "(experts: 0,1,2/0,3)") from None
    return segments


# Structured SpectrumConfig fields that still have a flag: name -> parser of its text.
_PARSED = {"real_steps": parse_steps}


def config_fields() -> dict[str, dataclasses.Field]:
    """The SpectrumConfig fields that are command-line options (every scalar one but the forecaster, and
    the structured ones with a parser)."""
    return {f.name: f for f in dataclasses.fields(SpectrumConfig)
            if f.name in SPECTRUM_KNOBS and (scalar_type(f) or f.name in _PARSED)}


# --- Parameters -------------------------------------------------------------------------------------------

def option(name: str, typ: Any, help: str, panel: str, *short: str, default: Any = None,
           show_default: bool = False, **extra: Any) -> inspect.Parameter:
    """One Typer option as a keyword-only parameter (bools are --x/--no-x switches without a metavar)."""
    decls = [f"{flag(name)}/--no-{flag(name)[2:]}" if typ is bool and default is None else flag(name), *short]
    if typ is bool:
        extra.setdefault("metavar", "")
    annotation = Annotated[Optional[typ] if default is None else typ,
                           typer.Option(*decls, help=help, rich_help_panel=panel, show_default=show_default, **extra)]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# The request's own knobs (the Spectrum ones come from SpectrumConfig): name -> (type, short flags, help).
_PRESET = default_note("preset")
_JOB_OPTIONS: Mapping[str, tuple[Any, tuple[str, ...], str]] = {
    "seed": (int, (), f"Random seed, 0 to 2**64-1 (same seed, same output). {default_note(str(DEFAULT_SEED))}"),
    "steps": (int, ("-s",), f"Denoising steps. {_PRESET}"),
    "height": (int, ("-H",), f"Pixels. {_PRESET}"),
    "width": (int, ("-W",), f"Pixels. {_PRESET}"),
    "frames": (int, (), f"Video frames. {_PRESET}"),
    "fps": (int, (), f"Video frame rate. {_PRESET}"),
    "guidance": (float, ("-g",), f"Guidance scale. {_PRESET}"),
    "method": (Method, (), f"spectrum (Chebyshev forecast), taylor, reuse, linear (capped extrapolation), or none (the "
               f"plain pipeline). {_PRESET}"),
    "profile": (str, (), "A calibration profile (a file spectrum calibrate wrote), or none for the paper's reference "
                "schedule. \\[default: a shipped or calibrated profile that matches the model, steps, guidance, "
                "size and budget, else the reference]"),
    "image": (str, (), "Input image (PNG/JPEG/WebP) for image-to-image, inpaint, edit (Kontext) and image-to-video "
              "models; resized to the output size by the pipeline. Refused by models that take none."),
    "mask": (str, (), "Inpaint mask, the size of --image (white: repaint, black: keep)."),
    "strength": (float, (), "img2img/inpaint: how much of the schedule runs, in (0, 1] (1: from pure noise); fewer "
                 f"steps run, and --nfe counts over them. {_PRESET}"),
}
assert set(_JOB_OPTIONS) == set(JOB_KNOBS), "every knob of build_job has an option"


def knob_parameters(names: Iterable[str] | None = None) -> list[inspect.Parameter]:
    """The options for `names` (default: every knob of `build_job`), each defaulting to None (the preset's)."""
    fields = config_fields()
    helps = config_help()
    params = []
    for name in (JOB_KNOBS + tuple(fields)) if names is None else tuple(names):
        if name in _JOB_OPTIONS:
            typ, short, text = _JOB_OPTIONS[name]
            panel = SPECTRUM_PANEL if name in ("method", "profile") else GEN_PANEL
        else:
            typ, short, panel = scalar_type(fields[name]) or str, (), SPECTRUM_PANEL
            text = f"{helps.get(name, '')} {_PRESET}".strip()
        extra = {"parser": _PARSED[name], "metavar": "STEPS"} if name in _PARSED else {}
        params.append(option(name, typ, text, panel, *short, **extra))
    return params


@dataclass(frozen=True)
class OptionGroup:
    """Options that reach a command as one keyword argument `name`, built by `make` from their values."""

    name: str
    params: tuple[inspect.Parameter, ...]
    make: Callable[[dict[str, Any]], Any]


def _knob_values(values: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in values.items()}


def knob_options(names: Iterable[str] | None = None) -> OptionGroup:
    """The `knobs` group: a {knob: value or None} mapping for `build_job`."""
    return OptionGroup("knobs", tuple(knob_parameters(names)), _knob_values)


KNOB_OPTIONS = knob_options()


def with_options(*groups: OptionGroup) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add each group's options to a command; the command takes one keyword per group instead."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        taken = {g.name for g in groups}
        own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in signature.parameters.values()
               if p.name not in taken]
        params = own + [p for g in groups for p in g.params]

        @functools.wraps(command)
        def run(**values: Any) -> Any:
            for g in groups:
                values[g.name] = g.make({p.name: values.pop(p.name) for p in g.params})
            return command(**values)

        del run.__wrapped__  # Typer must read the signature below, not the command's
        run.__signature__ = signature.replace(parameters=params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run

    return decorate


class _HelpWithoutMetavar:
    """Switches (--json, --offload, -h/--help, ...) listed without Typer's `<bool>`: a switch takes no
    value, and `<bool>` invites `--offload true`."""

    def get_params(self, ctx: Any) -> Any:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_HelpWithoutMetavar, TyperCommand):
    """The class of every spectrum command (`app.command(cls=Command)`)."""


class Group(_HelpWithoutMetavar, TyperGroup):
    """The class of spectrum's command groups."""


# --- Options some commands add themselves ------------------------------------------------------------------

PromptArg = Annotated[str, typer.Argument(help="What to generate.", show_default=False)]
OutOpt = Annotated[Optional[str], typer.Option(  # str: a Path would drop the trailing "/" of a folder
    "--out", "-o", help="Output file, or a folder for the default name (model_prompt_s<seed>_<method>.png|.mp4). "
    + default_note("outputs/"), show_default=False, rich_help_panel=OUT_PANEL)]
OverwriteOpt = Annotated[bool, typer.Option(
    "--overwrite", help="Replace existing files (only ones spectrum wrote).", metavar="", rich_help_panel=OUT_PANEL)]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="One JSON object per generation on stdout (humans' output stays on stderr).", metavar="",
    rich_help_panel=OUT_PANEL)]
CompareOpt = Annotated[bool, typer.Option(
    "--compare", help="Also run the full-step baseline: measured speedup, PSNR/SSIM, side-by-side output.",
    metavar="", rich_help_panel=OUT_PANEL)]
