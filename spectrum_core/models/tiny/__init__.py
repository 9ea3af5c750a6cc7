"""Tiny random-weight diffusers pipelines for every model family spectrum supports.

Why: spectrum must be developed and tested on a CPU-only machine with no access to a model hub, yet it has
to exercise the real diffusers code paths of every family it supports (pipeline classes,
``save_pretrained``/``from_pretrained``, prompt encoding, CFG batching, ``cache_context``, the Wan2.2
two-expert switch).  This package makes such pipelines out of nothing but configs and a seed: every
component (transformer(s), VAE, scheduler, text encoders, tokenizers) is created locally, so nothing is
ever downloaded.  The architectures keep the structure of the real models (block kinds, text encoder
kinds, scheduler settings, guidance mode) at toy widths (1-2 blocks per stack, widths 16-32).

One module per family holds its builder (``flux``, ``sd3``, ``hunyuan``, ``wan``, ``ltx``, ``cogvideox``,
``chroma``, ``qwenimage``, ``flux2``, ``zimage``, ``sdxl``, ``hunyuan15``, ``mochi``, ``ltx2``, ``cogview4``, ``lumina2``, ``pixart``, ``hunyuanimage``, ``bria``, ``kandinsky5``, ``motif``, ``cosmos3``, ``latte``, ``dit``); ``_common`` holds the shared vocabulary, tokenizers, text encoders
and image VAE.

Tokenizers are real ``transformers`` tokenizer classes (CLIP, T5, Llama, Qwen2, Gemma) over a small English
vocabulary trained here with the ``tokenizers`` library; unknown words fall back to characters (or
``<unk>``), so any English prompt works.  The Llama tokenizer splits HunyuanVideo's default prompt
template into exactly the 95 prefix tokens that the pipeline's hard-coded ``crop_start=95`` expects, and
the Qwen2 tokenizer splits Qwen-Image's template into the 34 tokens its pipeline drops, so the default
templates crop the same way as with the real models.

Measured on the shared development CPU (torch 2.13 CPU, diffusers 0.42.1, transformers 5.24), with
``torch.set_num_threads(1)``; seconds:

    family    build   save   load   pipe(prompt, num_inference_steps=50, **TINY_CALL_KWARGS[family])
    flux       0.09   0.4    0.29   1.8-1.9
    sd35       0.18   0.1    0.28   1.0-1.1
    hunyuan    0.2    0.1    0.28   1.6-1.7
    wan        0.2    0.05   0.19   1.3
    wan22      0.1    0.07   0.23   1.3

"load" is ``load_tiny_pipeline`` on an existing cache directory.  The first build in a process also pays
about 3 s of one-off lazy imports.  With torch's default 2 threads the calls take about 1 s each on a
quiet machine but 5-17 s on a busy one (the two OpenMP threads wait on each other at every small op), so
tests of tiny models should run single-threaded.

Features do move along the trajectory: over 50 steps the image-stream output of the first/last
transformer block changes by 42-57 % (relative L2, first vs last step; 8 % for wan22's high-noise expert,
which only sees the first 16 steps).  Text conditioning is weakest in Wan, whose pipeline pads prompts
with zeros to ``max_sequence_length`` (default 512) and attends to them without a mask: cond and uncond
noise predictions differ by about 0.5 % (about 5 % with ``max_sequence_length=32``).  Wan2.2's expert
switch (``boundary_ratio`` 0.875 with ``flow_shift`` 3) hands over after 16 of 50 steps (7 of 20).

Requires transformers >= 5 (tokenizer classes built from an in-memory vocabulary).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import types
from typing import Any, Callable, Mapping

import diffusers
import torch

from ...hooks.families import variant, variant_names
from ..call_defaults import FILE_NAME, write_call_defaults
from .bria import build_bria
from .chroma import build_chroma
from .cogvideox import build_cogvideox
from .cogview4 import build_cogview4
from .cosmos3 import build_cosmos3
from .dit import build_dit
from .flux import build_flux, build_flux_fill
from .flux2 import build_flux2_dev, build_flux2_klein
from .hunyuan import build_hunyuan, build_hunyuan_i2v
from .hunyuan15 import build_hunyuan15
from .hunyuanimage import build_hunyuanimage
from .kandinsky5 import build_kandinsky5
from .latte import build_latte
from .ltx import build_ltx
from .ltx2 import build_ltx2
from .lumina2 import build_lumina2
from .mochi import build_mochi
from .motif import build_motif
from .pixart import build_pixart_sigma
from .qwenimage import build_qwenimage
from .sd3 import build_sd35, build_sd35_inpaint
from .sdxl import build_sdxl
from .wan import build_wan, build_wan22, build_wan22_5b, build_wan22_i2v, build_wan_i2v, build_wan_vace
from .zimage import build_zimage

__all__ = ["FAMILIES", "IMAGE_FAMILIES", "TINY_CALL_KWARGS", "build_tiny_pipeline", "tiny_pipeline_dir", "load_tiny_pipeline"]

# The tiny models: every family variant of the registry that has tiny call defaults (and a builder below);
# FAMILIES are called with a prompt alone, IMAGE_FAMILIES also take an input image (img2img, inpaint, edit,
# image-to-video: ``Variant.inputs``), which tests pass themselves.
FAMILIES: tuple[str, ...] = tuple(n for n in variant_names(tiny_only=True) if not variant(n)[1].inputs)
IMAGE_FAMILIES: tuple[str, ...] = tuple(n for n in variant_names(tiny_only=True) if variant(n)[1].inputs)

# Bump when the architecture/tokenizers change, so stale caches are not reused.
_CACHE_VERSION = "v1"

# Call defaults of each tiny pipeline (size, frames, guidance), from the family registry.
TINY_CALL_KWARGS: Mapping[str, Mapping[str, Any]] = types.MappingProxyType(
    {name: variant(name)[1].tiny_call for name in FAMILIES + IMAGE_FAMILIES}
)


def _same_components(base: Callable[[int], diffusers.DiffusionPipeline], name: str
                     ) -> Callable[[int], diffusers.DiffusionPipeline]:
    """A builder of the pipeline of variant ``name`` over the very components ``base`` builds (FLUX's
    img2img, inpaint and Kontext pipelines take FluxPipeline's), so the tiny weights are the base's."""

    def build(seed: int) -> diffusers.DiffusionPipeline:
        return getattr(diffusers, variant(name)[1].pipeline)(**base(seed).components)

    build.__name__ = f"build_{name.replace('-', '_')}"
    return build


# One builder per tiny model (adding a family: its registry entry in hooks/families.py, a module here).
_BUILDERS: Mapping[str, Callable[[int], diffusers.DiffusionPipeline]] = types.MappingProxyType({
    "flux": build_flux, "sd35": build_sd35, "hunyuan": build_hunyuan, "wan": build_wan, "wan22": build_wan22,
    "wan22-5b": build_wan22_5b, "ltx": build_ltx, "cogvideox": build_cogvideox, "chroma": build_chroma,
    "qwenimage": build_qwenimage, "flux2-klein": build_flux2_klein, "zimage": build_zimage,
    "sdxl": build_sdxl, "hunyuan15": build_hunyuan15, "flux2": build_flux2_dev,
    "mochi": build_mochi, "ltx2": build_ltx2, "cogview4": build_cogview4,
    "lumina2": build_lumina2, "pixart-sigma": build_pixart_sigma, "latte": build_latte, "dit": build_dit,
    "hunyuanimage": build_hunyuanimage, "bria": build_bria, "kandinsky5": build_kandinsky5,
    "motif": build_motif, "cosmos3": build_cosmos3,
    "flux-img2img": _same_components(build_flux, "flux-img2img"),
    "flux-inpaint": _same_components(build_flux, "flux-inpaint"),
    "flux-kontext": _same_components(build_flux, "flux-kontext"),
    "sd35-img2img": _same_components(build_sd35, "sd35-img2img"),
    "qwenimage-img2img": _same_components(build_qwenimage, "qwenimage-img2img"),
    "qwenimage-inpaint": _same_components(build_qwenimage, "qwenimage-inpaint"),
    "ltx-i2v": _same_components(build_ltx, "ltx-i2v"),
    "sdxl-img2img": _same_components(build_sdxl, "sdxl-img2img"),
    "sdxl-inpaint": _same_components(build_sdxl, "sdxl-inpaint"),
    "flux-fill": build_flux_fill, "sd35-inpaint": build_sd35_inpaint,
    "wan-i2v": build_wan_i2v, "wan22-i2v": build_wan22_i2v, "wan-vace": build_wan_vace,
    "hunyuan-i2v": build_hunyuan_i2v,
})


# ----------------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------------


def build_tiny_pipeline(family: str, seed: int = 0) -> diffusers.DiffusionPipeline:
    """Create a tiny pipeline of ``family`` in memory, with weights drawn from ``seed``.

    Nothing is downloaded; the global torch RNG state is left untouched.
    """
    _check_family(family)
    return _BUILDERS[family](seed)


def tiny_pipeline_dir(family: str, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Directory holding the saved tiny pipeline of ``family`` (seed 0), created on first use.

    The pipeline (with its ``spectrum_call.json``, see ``models.call_defaults``) is written to a hidden
    temporary sibling directory and renamed into place, so the target is either absent or complete: an
    interrupt (Ctrl-C, or SIGTERM under ``app.signals.sigterm_as_interrupt``) or a failed write removes
    the temporary directory and leaves no entry. Concurrent first uses from several processes are safe
    (the loser of the rename race discards its copy and uses the winner's). An incomplete entry left by
    something else (no ``model_index.json``) is replaced.
    """
    _check_family(family)
    if cache_dir is None:
        cache_dir = os.environ.get("SPECTRUM_CACHE") or pathlib.Path.home() / ".cache" / "spectrum"
    target = pathlib.Path(cache_dir).expanduser() / "tiny" / f"{family}-{_CACHE_VERSION}"
    if _is_complete(target):
        return _with_call_defaults(target, family)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        build_tiny_pipeline(family, seed=0).save_pretrained(staging)
        _write_tiny_call_defaults(staging, family)
        for attempt in range(2):
            try:
                os.rename(staging, target)
                break
            except OSError:
                if _is_complete(target):  # another process won the race; its copy is equivalent
                    break
                if attempt:
                    raise
                _discard(target)  # an incomplete entry (not from this function): out of the way, then retry
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _with_call_defaults(target, family)


def load_tiny_pipeline(
    family: str,
    cache_dir: str | os.PathLike | None = None,
    torch_dtype: torch.dtype = torch.float32,
) -> diffusers.DiffusionPipeline:
    """Load the tiny ``family`` pipeline through ``from_pretrained``, exactly as a downloaded model loads."""
    _check_family(family)
    pipeline_class = getattr(diffusers, variant(family)[1].pipeline)
    path = tiny_pipeline_dir(family, cache_dir)
    try:  # diffusers >= 0.42 renamed the argument and warns about the old name
        from diffusers.utils.deprecation_utils import _resolve_dtype  # noqa: F401
    except ImportError:
        return pipeline_class.from_pretrained(path, torch_dtype=torch_dtype)
    return pipeline_class.from_pretrained(path, dtype=torch_dtype)


# ----------------------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------------------


def _check_family(family: str) -> None:
    if family not in FAMILIES + IMAGE_FAMILIES:
        raise ValueError(f"unknown tiny pipeline family {family!r}; valid families: "
                         f"{', '.join(FAMILIES + IMAGE_FAMILIES)}")


def _is_complete(path: pathlib.Path) -> bool:
    return (path / "model_index.json").is_file()


def _discard(path: pathlib.Path) -> None:
    """Remove an incomplete cache entry: renamed aside first (atomic), so no process ever loads half of it."""
    aside = pathlib.Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
    try:
        os.rename(path, aside / "entry")
    except FileNotFoundError:  # another process discarded it first
        pass
    finally:
        shutil.rmtree(aside, ignore_errors=True)


# Frames per second of the tiny video models (their presets' `fps`): for spectrum_call.json.
_TINY_FPS = 8
_TINY_STEPS = 50


def _tiny_call_defaults(family: str) -> dict[str, Any]:
    """How a tiny pipeline is called by default: its presets' steps and the registry's tiny call."""
    return {"num_inference_steps": _TINY_STEPS, **TINY_CALL_KWARGS[family]}


def _write_tiny_call_defaults(folder: pathlib.Path, family: str) -> None:
    write_call_defaults(folder, variant(family)[1].pipeline, _tiny_call_defaults(family),
                        fps=_TINY_FPS if variant(family)[1].video else None)


def _with_call_defaults(target: pathlib.Path, family: str) -> pathlib.Path:
    """`target`, given its spectrum_call.json if an entry made before that file existed lacks it (written
    beside and renamed in: readers see the whole file or none)."""
    if not (target / FILE_NAME).is_file():
        staging = pathlib.Path(tempfile.mkdtemp(prefix=".call.", dir=target))
        try:
            _write_tiny_call_defaults(staging, family)
            os.replace(staging / FILE_NAME, target / FILE_NAME)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
