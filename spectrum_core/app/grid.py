"""A picture grid that compares methods by eye: one row per prompt, the full-step output first, then
each accelerated method at the same real-pass budget, with its PSNR against the full-step output.

This is the README's grid (``spectrum grid``), and a quick way for a user to see what a budget costs on
their own model before committing to it::

    from spectrum_core.app.grid import method_grid
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.runner import Runner

    grid = method_grid(Runner(load_preset("shapes")), ["a red circle on a navy background"], nfe=10)
    grid.image.save("grid.png")

Videos show their first, middle and last frames side by side in each cell.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import metrics
from .request import SPECTRUM_KNOBS, build_job
from .runner import Result, Runner

GRID_METHODS = ("spectrum", "taylor", "reuse")
METHOD_LABELS = {"none": "full", "spectrum": "Spectrum", "taylor": "Taylor", "reuse": "reuse"}


@dataclass(frozen=True)
class GridCell:
    prompt: str
    method: str            # "none" for the full-step output
    nfe: int               # real forward passes the run made (counted, not configured)
    steps: int
    seconds: float
    psnr: float | None     # against the row's full-step output; None for that output itself
    ssim: float | None
    media: Any

    def to_dict(self) -> dict[str, Any]:
        finite = lambda x: None if x is None or not math.isfinite(x) else round(x, 4)  # noqa: E731
        return {"prompt": self.prompt, "method": self.method, "nfe": self.nfe, "steps": self.steps,
                "seconds": round(self.seconds, 4), "psnr": finite(self.psnr), "ssim": finite(self.ssim)}


@dataclass(frozen=True)
class Grid:
    columns: list[str]           # "none" first, then the methods
    rows: list[list[GridCell]]   # one per prompt, in column order
    image: Image.Image

    def to_dict(self) -> dict[str, Any]:
        return {"columns": self.columns, "cells": [c.to_dict() for row in self.rows for c in row]}


def method_grid(runner: Runner, prompts: Sequence[str], *, methods: Sequence[str] = GRID_METHODS,
                seed: int = 42, cell: int = 128, on_run: Callable[[str, str], None] | None = None,
                **job_kwargs: Any) -> Grid:
    """Run every prompt at full steps and with every method (same seed, same schedule options from
    ``job_kwargs``: nfe, alpha, steps, …, as `build_job` takes them) and lay the outputs out in a grid.

    ``on_run(prompt, method)`` is called before each run (progress). Raises RequestError on bad input
    before any model runs.
    """
    if not prompts:
        raise ValueError("method_grid needs at least one prompt")
    unknown = [m for m in methods if m not in METHOD_LABELS or m == "none"]
    if unknown:
        raise ValueError(f"Unknown method '{unknown[0]}'. Choose from: {', '.join(GRID_METHODS)}.")
    preset = runner.preset
    columns = ["none", *methods]
    plans = [[build_job(preset, p, seed=seed, method=m, **knobs_for(m, job_kwargs)) for m in columns]
             for p in prompts]  # every request checked before the first run
    rows = []
    for prompt, jobs in zip(prompts, plans):
        results: list[Result] = []
        for job in jobs:
            if on_run is not None:
                on_run(prompt, job.method)
            results.append(runner.generate(job))
        reference = results[0].media
        row = []
        for job, res in zip(jobs, results):
            same = job.method == "none"
            row.append(GridCell(prompt=prompt, method=job.method, nfe=res.nfe, steps=job.steps, seconds=res.seconds,
                                psnr=None if same else metrics.psnr(res.media, reference),
                                ssim=None if same else metrics.ssim(res.media, reference), media=res.media))
        rows.append(row)
    return Grid(columns=columns, rows=rows, image=render_grid(rows, cell=cell))


def knobs_for(method: str, job_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A column's share of the grid's options: the full-step column takes the size and step options but no
    schedule; a calibration profile (``profile``) applies to the spectrum column only (taylor and reuse run
    on the paper's schedule at the same budget)."""
    if method == "none":
        return {k: v for k, v in job_kwargs.items() if k not in SPECTRUM_KNOBS and k != "profile"}
    if method != "spectrum":
        return {k: v for k, v in job_kwargs.items() if k != "profile"}
    return dict(job_kwargs)


# --------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------

_PAD, _HEADER, _FOOTER = 6, 22, 18


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def _tile(media: Any, cell: int) -> Image.Image:
    """One cell: the image, or a video's first, middle and last frames, scaled to ``cell`` px high
    with nearest-neighbour sampling (small models' pixels stay sharp)."""
    if isinstance(media, Image.Image):
        frames = [media.convert("RGB")]
    else:
        arr = np.asarray(media)
        arr = (np.clip(arr, 0, 1) * 255).round().astype(np.uint8) if arr.dtype != np.uint8 else arr
        picks = sorted({0, len(arr) // 2, len(arr) - 1})
        frames = [Image.fromarray(arr[i]) for i in picks]
    scaled = [f.resize((max(1, round(f.width * cell / f.height)), cell), Image.NEAREST) for f in frames]
    gap = 2 if len(scaled) > 1 else 0
    out = Image.new("RGB", (sum(s.width for s in scaled) + gap * (len(scaled) - 1), cell), "white")
    x = 0
    for s in scaled:
        out.paste(s, (x, 0))
        x += s.width + gap
    return out


def _header(cell: GridCell) -> str:
    name = METHOD_LABELS.get(cell.method, cell.method)
    return f"{name} {cell.nfe}/{cell.steps}"


def _footer(cell: GridCell) -> str:
    if cell.psnr is None:
        return "reference"
    psnr = "inf" if not math.isfinite(cell.psnr) else f"{cell.psnr:.1f}"
    return f"PSNR {psnr} dB"


def render_grid(rows: list[list[GridCell]], cell: int = 128) -> Image.Image:
    """The grid as one RGB image: a prompt label left of each row, method and passes above each
    picture, PSNR against the row's full-step output below it."""
    tiles = [[_tile(c.media, cell) for c in row] for row in rows]
    tile_w = max(t.width for row in tiles for t in row)
    label_w = max(cell, 140)
    font, small = _font(13), _font(11)
    width = _PAD + label_w + len(rows[0]) * (tile_w + _PAD)
    row_h = _HEADER + cell + _FOOTER + _PAD
    image = Image.new("RGB", (width, _PAD + len(rows) * row_h), "white")
    draw = ImageDraw.Draw(image)
    for r, (row, row_tiles) in enumerate(zip(rows, tiles)):
        top = _PAD + r * row_h
        chars = max(8, label_w // 7)
        for i, line in enumerate(textwrap.wrap(row[0].prompt, chars)[: max(1, cell // 16)]):
            draw.text((_PAD, top + _HEADER + i * 16), line, fill="black", font=font)
        for c, (cell_info, tile) in enumerate(zip(row, row_tiles)):
            left = _PAD + label_w + c * (tile_w + _PAD)
            draw.text((left, top + 4), _header(cell_info), fill="black", font=font)
            image.paste(tile, (left, top + _HEADER))
            draw.text((left, top + _HEADER + cell + 3), _footer(cell_info), fill=(80, 80, 80), font=small)
    return image
