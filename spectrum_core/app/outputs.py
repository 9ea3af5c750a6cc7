"""Where a generation's files go and what they say about it: output naming, the settings recorded in
every file's metadata, the one-generation record (the CLI's `--json` object) and saving an output set.

Library code: no terminal, no flags. Errors are `OutputError` (a `RequestError`) whose `field` names
the setting concerned (`out` or `overwrite`); messages name settings in backticks, so a front end can
word them its own way (the CLI: --out, --overwrite).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import media
from .presets import Preset
from .request import RequestError

DEFAULT_OUT_DIR = Path("outputs")
# Bytes a default name may grow by: "-9999" for renumbering plus "_baseline" for --compare's companion.
_NAME_RESERVE = len("-9999") + len("_baseline")


class OutputError(RequestError):
    """An output path that cannot be used (wrong extension, already there, not writable)."""


@dataclass(frozen=True)
class Outputs:
    """The files of one generation: the output, and with a comparison the baseline and side-by-side."""

    main: Path
    baseline: Path | None = None
    side_by_side: Path | None = None
    default_name: bool = False        # a default name: renumbered (-1, -2…) if taken meanwhile

    def paths(self) -> list[Path]:
        return [p for p in (self.main, self.baseline, self.side_by_side) if p is not None]


def with_companions(main: Path, compare: bool, default_name: bool = False) -> Outputs:
    """`main` alone, or with its comparison companions `<stem>_baseline` and `<stem>_ab`."""
    if not compare:
        return Outputs(main, default_name=default_name)
    return Outputs(main, main.with_name(f"{main.stem}_baseline{main.suffix}"),
                   main.with_name(f"{main.stem}_ab{main.suffix}"), default_name=default_name)


def is_folder_target(out: str | None) -> bool:
    """Whether `out` names a folder for default names (None, an existing folder, a trailing slash)."""
    return out is None or os.path.isdir(out) or out.endswith(("/", os.sep))


def plan_outputs(preset: Preset, job: Any, out: str | None, compare: bool, overwrite: bool) -> Outputs:
    """Where this generation's files go. A default name never replaces an existing file (it gets a
    -1, -2… suffix); an explicit existing file needs `overwrite`. The folder must be writable and
    the names must fit the file system."""
    ext = preset.extension
    if not is_folder_target(out):
        path = Path(out)
        if path.suffix.lower() != ext:
            if path.suffix:
                kind = "videos are written as MP4" if preset.is_video else "images are written as PNG"
                raise OutputError(f"`out` {path}: {kind}; use a name ending in {ext}.", field="out", value=str(path),
                                  expected=f"a file name ending in {ext}")
            path = path.with_suffix(ext)
        _check_names(path, reserve=len("_baseline") if compare else 0)
        outputs = with_companions(path, compare)
        for p in outputs.paths():
            check_output_path(p, overwrite, folder=False)
    else:
        folder = Path(out) if out is not None else DEFAULT_OUT_DIR
        stem = media.default_stem(preset.name, job.prompt, job.seed, job.signature)
        _check_names(folder / f"{stem}{ext}", reserve=_NAME_RESERVE)
        n = 0
        while True:
            name = stem if n == 0 else f"{stem}-{n}"
            outputs = with_companions(folder / f"{name}{ext}", compare, default_name=True)
            if overwrite or not any(os.path.lexists(f) for p in outputs.paths() for f in media.output_files(p)):
                break
            n += 1
    check_output_path(outputs.main, overwrite=True)
    return outputs


def _check_names(path: Path, reserve: int) -> None:
    try:
        media.check_file_name(path, reserve)
    except ValueError as exc:
        raise OutputError(f"`out`: {exc}.", field="out", value=str(path),
                          expected="a file name within the file system's limit") from None


def check_output_path(path: Path, overwrite: bool, folder: bool = True) -> None:
    """OutputError unless `path` may be written: an existing file needs `overwrite`, and (with `folder`)
    its folder must be writable."""
    if path.exists() and not overwrite:
        raise OutputError(f"'{path}' already exists; allow `overwrite` to replace it, or choose another `out`.",
                          field="overwrite", value=str(path), expected="overwrite to replace an existing file")
    if folder:
        try:
            media.check_writable_dir(path.parent)
        except OSError as exc:
            raise OutputError(f"Output path '{path}': {exc}", field="out", value=str(path),
                              expected="a path in a writable folder") from None


def settings(preset: Preset, result: Any) -> dict[str, Any]:
    """What was generated and how: shared by the files' metadata and the generation record."""
    job = result.job
    # a batch line's own LoRAs (absent otherwise, so files and records without them are as before)
    lora = {} if getattr(job, "lora", None) is None else {"lora": [[path, scale] for path, scale in job.lora]}
    return {
        **lora,
        "model": preset.name, "prompt": job.prompt, "seed": job.seed, "steps": job.steps, "method": job.method,
        "nfe": result.nfe, "real_steps": result.real_steps, "forecast_steps": result.forecast_steps,
        "height": job.height, "width": job.width, "frames": job.frames, "fps": job.fps, "guidance": job.guidance,
        "spectrum": None if job.spectrum is None else job.spectrum.to_dict(), "profile": job.profile,
        # only for the pipelines that take them, so the records of the others read as before
        **{k: getattr(job, k) for k in ("image", "mask", "strength") if getattr(job, k) is not None},
    }


def metadata(preset: Preset, result: Any, generator: str, **extra: Any) -> dict[str, Any]:
    """The metadata a file carries (PNG text chunks, an MP4's sidecar)."""
    return {**settings(preset, result), "source": preset.source, "generator": generator, **extra}


def record(preset: Preset, result: Any, output: Path | None, comparison: Any = None,
           outputs: Outputs | None = None) -> dict[str, Any]:
    """The record of one generation (the CLI's --json object; schema in README.md). Strict JSON:
    an infinite PSNR (identical outputs) is null."""
    fin = media.finite_or_none
    rec = settings(preset, result)
    rec.update(seconds=round(result.seconds, 4), transformer_seconds=round(result.transformer_seconds, 4),
               output=None if output is None else str(output))
    rec.update(batch_size=getattr(result, "batch_size", 1), peak_memory_bytes=getattr(result, "peak_memory_bytes", None),
               forecaster_state_bytes=getattr(result, "forecaster_state_bytes", None),
               forecaster_state_device=getattr(result, "forecaster_state_device", None))
    if comparison is None:
        rec["estimated_speedup"] = fin(result.estimated_speedup)
    else:
        rec.update(
            baseline_seconds=round(comparison.baseline.seconds, 4),
            baseline_transformer_seconds=round(comparison.baseline.transformer_seconds, 4),
            baseline_peak_memory_bytes=getattr(comparison.baseline, "peak_memory_bytes", None),
            speedup=fin(comparison.speedup), psnr=fin(comparison.psnr), ssim=fin(comparison.ssim),
            lpips=fin(comparison.lpips),
            baseline_output=str(outputs.baseline) if outputs else None,
            comparison_output=str(outputs.side_by_side) if outputs else None,
        )
    return rec


def _add(out: media.OutputSet, preset: Preset, path: Path, picture: Any, fps: int | None,
         meta: dict[str, Any]) -> int:
    """Stage one output (a video with its sidecar); returns its index among the set's files."""
    index = len(out.names(0))
    if preset.is_video:
        out.add_mp4(path, picture, fps, meta)
    else:
        out.add_png(path, picture, meta)
    return index


def save(preset: Preset, result: Any, outputs: Outputs, overwrite: bool, generator: str,
         comparison: Any = None, rec: dict[str, Any] | None = None,
         then: Callable[[list[Path]], None] | None = None) -> Outputs:
    """Write a generation's files as one set (all or none): the output, and with `comparison` the
    baseline and the side-by-side (left: baseline, right: accelerated). A default name taken
    meanwhile (a concurrent run) moves the whole set to the next number. `then(paths)` runs once the
    files are in place; if it fails they are removed again (a batch records its manifest line there).
    Returns the names used."""
    with media.OutputSet(overwrite=overwrite, renumber=outputs.default_name) as out:
        index = [_add(out, preset, outputs.main, result.media, result.job.fps, metadata(preset, result, generator))]
        if comparison is not None:
            base = comparison.baseline
            index.append(_add(out, preset, outputs.baseline, base.media, base.job.fps,
                              metadata(preset, base, generator)))
            extra: dict[str, Any] = {"layout": "left: baseline, right: accelerated"}
            if rec is not None:
                extra["comparison"] = {k: rec[k] for k in ("speedup", "psnr", "ssim", "lpips")}
            index.append(_add(out, preset, outputs.side_by_side, media.side_by_side(base.media, result.media),
                              result.job.fps, metadata(preset, result, generator, **extra)))
        paths = out.commit(then=then)
    return Outputs(*(paths[i] for i in index), default_name=outputs.default_name)
