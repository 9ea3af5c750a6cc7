"""The command-line options shared by spectrum's commands, defined once (Typer needs each command to
spell out its parameters; their types, flags and help live here)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from spectrum_core.app.presets import DEFAULT_MODEL


class Method(str, Enum):
    spectrum = "spectrum"
    taylor = "taylor"
    reuse = "reuse"
    none = "none"


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


# --- Options, defined once -------------------------------------------------------------------------
_MODEL = "Model"
_GEN = "Generation"
_SPEC = "Spectrum"
OUT_PANEL = _OUT = "Output"

PromptArg = Annotated[str, typer.Argument(help="What to generate.", show_default=False)]
ModelOpt = Annotated[Optional[str], typer.Option(
    "--model", "-m", help=f"Preset name, see `spectrum presets`. [default: {DEFAULT_MODEL}]",
    show_default=False, rich_help_panel=_MODEL)]
PresetFileOpt = Annotated[Optional[Path], typer.Option(
    "--preset-file", help="A preset TOML file of your own (same keys as `spectrum presets show flux`).",
    dir_okay=False, rich_help_panel=_MODEL)]
ModelPathOpt = Annotated[Optional[Path], typer.Option(
    "--model-path", help="A local diffusers folder to load the weights from (with --model: that preset's "
    "defaults; alone: the defaults of its pipeline family).", file_okay=False, rich_help_panel=_MODEL)]
DeviceOpt = Annotated[Device, typer.Option("--device", help="auto = cuda > mps > cpu.", rich_help_panel=_MODEL)]
DtypeOpt = Annotated[Dtype, typer.Option("--dtype", help="auto = the preset's dtype.", rich_help_panel=_MODEL)]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", help="CPU threads for torch (on --device cpu). [default: the preset's cpu_threads, else torch's]",
    min=1, show_default=False, rich_help_panel=_MODEL)]
OffloadOpt = Annotated[bool, typer.Option(
    "--offload", help="Model CPU offload: keep weights on the CPU, move each component to the GPU when "
    "it runs (big models on small GPUs).", rich_help_panel=_MODEL)]

StepsOpt = Annotated[Optional[int], typer.Option("--steps", "-s", help="Denoising steps. [default: preset]",
                                                 show_default=False, rich_help_panel=_GEN)]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (same seed, same output).", rich_help_panel=_GEN)]
HeightOpt = Annotated[Optional[int], typer.Option("--height", "-H", help="Pixels. [default: preset]",
                                                  show_default=False, rich_help_panel=_GEN)]
WidthOpt = Annotated[Optional[int], typer.Option("--width", "-W", help="Pixels. [default: preset]",
                                                 show_default=False, rich_help_panel=_GEN)]
FramesOpt = Annotated[Optional[int], typer.Option("--frames", help="Video frames. [default: preset]",
                                                  show_default=False, rich_help_panel=_GEN)]
FpsOpt = Annotated[Optional[int], typer.Option("--fps", help="Video frame rate. [default: preset]",
                                               show_default=False, rich_help_panel=_GEN)]
GuidanceOpt = Annotated[Optional[float], typer.Option("--guidance", "-g", help="Guidance scale. [default: preset]",
                                                      show_default=False, rich_help_panel=_GEN)]

MethodOpt = Annotated[Optional[Method], typer.Option(
    "--method", help="spectrum (Chebyshev forecast), taylor, reuse, or none (plain pipeline). [default: preset]",
    show_default=False, rich_help_panel=_SPEC)]
NfeOpt = Annotated[Optional[int], typer.Option(
    "--nfe", help="Real forward passes per run (e.g. 14 of 50 ≈ 3.5x). Exclusive with --alpha.",
    show_default=False, rich_help_panel=_SPEC)]
AlphaOpt = Annotated[Optional[float], typer.Option(
    "--alpha", help="Schedule growth α: 0.75 ≈ 14 of 50 passes, 3.0 ≈ 10. [default: preset]",
    show_default=False, rich_help_panel=_SPEC)]
DegreeOpt = Annotated[Optional[int], typer.Option("--degree", help="Chebyshev degree M. [default: preset]",
                                                  show_default=False, rich_help_panel=_SPEC)]
RidgeOpt = Annotated[Optional[float], typer.Option("--ridge", help="Ridge penalty λ. [default: preset]",
                                                   show_default=False, rich_help_panel=_SPEC)]
BlendOpt = Annotated[Optional[float], typer.Option(
    "--blend", help="w: 1 = pure Chebyshev, 0.5 = half linear extrapolation. [default: preset]",
    show_default=False, rich_help_panel=_SPEC)]
WindowOpt = Annotated[Optional[float], typer.Option("--window", help="Initial window N. [default: preset]",
                                                    show_default=False, rich_help_panel=_SPEC)]
WarmupOpt = Annotated[Optional[int], typer.Option("--warmup", help="Warm-up steps W, always real. [default: preset]",
                                                  show_default=False, rich_help_panel=_SPEC)]
TaylorOrderOpt = Annotated[Optional[int], typer.Option(
    "--taylor-order", help="Order of --method taylor (1 or 2). [default: preset]", show_default=False,
    rich_help_panel=_SPEC)]
TauHorizonOpt = Annotated[Optional[int], typer.Option(
    "--tau-horizon", help="Steps mapped onto the Chebyshev domain; 50 = the reference. [default: the run's steps]",
    show_default=False, rich_help_panel=_SPEC)]
ForceLastOpt = Annotated[Optional[bool], typer.Option(
    "--force-last/--no-force-last", help="Run the last step for real (counted in --nfe). [default: preset]",
    show_default=False, rich_help_panel=_SPEC)]
IntervalOpt = Annotated[Optional[int], typer.Option(
    "--interval", help="TaylorSeer's uniform schedule instead: warm-up, then a real step every N. "
    "Exclusive with --nfe/--alpha.", show_default=False, rich_help_panel=_SPEC)]

OutOpt = Annotated[Optional[str], typer.Option(  # str: a Path would drop the trailing "/" of a folder
    "--out", "-o", help="Output file, or a folder for the default name "
    "(model_prompt_s<seed>_<method>.png|.mp4). [default: outputs/]", show_default=False, rich_help_panel=_OUT)]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing files.", rich_help_panel=_OUT)]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="One JSON object per generation on stdout (humans' output stays on stderr).",
    rich_help_panel=_OUT)]
CompareOpt = Annotated[bool, typer.Option(
    "--compare", help="Also run the full-step baseline: measured speedup, PSNR/SSIM, side-by-side output.",
    rich_help_panel=_OUT)]
