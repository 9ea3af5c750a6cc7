"""Writing results: PNGs carrying their generation parameters, H.264 MP4s with a sidecar JSON,
side-by-side comparisons. Every write is atomic: the data goes to a temporary file in the target
folder, which is renamed into place only when complete, so an interrupted run leaves no partial file.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

# PNG text chunk keys. "parameters" is the one-line summary image viewers and web UIs show;
# "spectrum" holds every setting as JSON for tools.
PNG_PARAMETERS_KEY = "parameters"
PNG_METADATA_KEY = "spectrum"


def slugify(text: str, max_len: int = 48) -> str:
    """A file-name-safe, lower-case slug of `text` ("A red circle!" -> "a-red-circle")."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_len].rstrip("-") or "untitled"


def default_stem(model: str, prompt: str, seed: int, signature: str) -> str:
    """The default output name: model, prompt, seed and method, e.g. `flux_a-red-circle_s42_cheb-nfe14`."""
    return f"{slugify(model, 24)}_{slugify(prompt)}_s{seed}_{signature}"


def check_writable_dir(folder: Path) -> None:
    """Raise OSError (with a readable message) unless files can be created in `folder`, creating it
    if needed. Probes with a real temporary file: permissions, read-only mounts and a file in the way
    all show up here, before any model loads."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".spectrum-probe-")
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise OSError(f"cannot write to '{folder}': part of that path is a file, not a folder") from None
    except OSError as exc:
        raise OSError(f"cannot write to '{folder}': {exc.strerror or exc}") from None


def atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool = False) -> Path:
    """Call `write(tmp)` on a temporary path beside `path`, then move it into place.

    The temporary file keeps `path`'s extension (ffmpeg picks the container from it). Without
    `overwrite` an existing `path` raises FileExistsError, and a file that appeared meanwhile is not
    clobbered (the final step is a hard link, which fails if the name is taken).
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"'{path}' already exists; pass --overwrite to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".part{path.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(f"'{path}' already exists; pass --overwrite to replace it.") from None
            except OSError:  # file systems without hard links
                if path.exists():
                    raise FileExistsError(f"'{path}' already exists; pass --overwrite to replace it.") from None
                os.replace(tmp, path)
    finally:  # also on KeyboardInterrupt: never leave the temporary file behind
        tmp.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _parameters_line(meta: dict[str, Any]) -> str:
    prompt = meta.get("prompt", "")
    rest = ", ".join(f"{k}: {v}" for k, v in meta.items() if k != "prompt" and not isinstance(v, (dict, list)))
    return f"{prompt}\n{rest}" if rest else prompt


def save_png(path: Path, image: Image.Image, metadata: dict[str, Any], overwrite: bool = False) -> Path:
    """Write `image` as PNG with `metadata` in its text chunks (see `read_png_metadata`)."""
    info = PngInfo()
    info.add_text(PNG_PARAMETERS_KEY, _parameters_line(metadata))
    info.add_text(PNG_METADATA_KEY, json.dumps(metadata, default=str))
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG", pnginfo=info), overwrite)


def read_png_metadata(path: Path) -> dict[str, Any]:
    """The settings `save_png` stored, as a dict ({} for a PNG without them)."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}) or {}
    return json.loads(text[PNG_METADATA_KEY]) if PNG_METADATA_KEY in text else {}


def save_json(path: Path, data: Any, overwrite: bool = False) -> Path:
    blob = json.dumps(data, indent=2, default=str) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(blob, encoding="utf-8"), overwrite)


def sidecar_path(video_path: Path) -> Path:
    return Path(video_path).with_suffix(".json")


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (what diffusers' `output_type="np"` returns) to uint8; uint8 passes through."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def save_mp4(path: Path, frames: np.ndarray, fps: int, metadata: dict[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write `frames` (F, H, W, 3) as an H.264 MP4 through imageio-ffmpeg, plus a sidecar JSON of
    `metadata` next to it (same name, `.json`). Odd sizes are padded to even, as yuv420p needs."""
    import imageio.v2 as imageio

    video = to_uint8(frames)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (F, H, W, 3), got {video.shape}")
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2
    if pad_h or pad_w:
        video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")

    def write(tmp: Path) -> None:
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", quality=8, macro_block_size=1,
                                    ffmpeg_log_level="error")
        try:
            for frame in video:
                writer.append_data(frame)
        finally:
            writer.close()

    sidecar = sidecar_path(path)
    if metadata is not None and not overwrite and sidecar.exists():
        raise FileExistsError(f"'{sidecar}' already exists; pass --overwrite to replace it.")
    atomic_write(path, write, overwrite)
    if metadata is not None:
        save_json(sidecar, metadata, overwrite)
    return path


def read_mp4(path: Path) -> np.ndarray:
    """All frames of a video as uint8 (F, H, W, 3)."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return np.stack([np.asarray(f) for f in reader])
    finally:
        reader.close()


def side_by_side(left: Any, right: Any, gap: int = 2) -> Any:
    """Two images (PIL) or two videos (F, H, W, 3 arrays) next to each other with a white gap."""
    if isinstance(left, Image.Image):
        a, b = np.asarray(left.convert("RGB")), np.asarray(right.convert("RGB"))
        return Image.fromarray(_hstack(a[None], b[None], gap)[0])
    return _hstack(to_uint8(left), to_uint8(right), gap)


def _hstack(a: np.ndarray, b: np.ndarray, gap: int) -> np.ndarray:
    frames, height = min(len(a), len(b)), max(a.shape[1], b.shape[1])
    out = np.full((frames, height, a.shape[2] + gap + b.shape[2], 3), 255, dtype=np.uint8)
    out[:, : a.shape[1], : a.shape[2]] = a[:frames]
    out[:, : b.shape[1], a.shape[2] + gap:] = b[:frames]
    return out
