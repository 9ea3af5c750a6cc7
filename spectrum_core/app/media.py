"""Writing results: PNGs carrying their generation parameters, H.264 MP4s with a sidecar JSON,
side-by-side comparisons — whole or not at all.

Every file is first written to a hidden temporary name in its target folder (`.NAME.XXXX.part.EXT`),
checked (a PNG decodes at the right size, an MP4's encoder exited cleanly and the file reads back
with the right frame count and size, a JSON file parses), and only then moved to its final name.
Files that belong together — a video and its sidecar, `--compare`'s three outputs, a batch output and
its manifest line — form an `OutputSet`, committed as a set: either every file appears under its
final name, or none does and any file that was there before is still there. An interrupt, a full
disk, a file-size limit or a failed encode leaves no temporary file and no new file.

Final names are taken atomically (a hard link, which fails if the name exists), so two processes
racing for one default name both succeed with distinct names (`renumber=True`: `-1`, `-2`…), and a
file that appeared meanwhile is never clobbered.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .signals import deferred_interrupts

# PNG text chunk keys. "parameters" is the one-line summary image viewers and web UIs show;
# "spectrum" holds every setting as JSON for tools.
PNG_PARAMETERS_KEY = "parameters"
PNG_METADATA_KEY = "spectrum"
# The key, starting with "spectrum", that marks a sidecar JSON as spectrum's (a PNG is marked by its
# "spectrum" text chunk): it tells a spectrum output, which an overwrite may replace, from an
# unrelated file that happens to have the same name.
GENERATOR_KEY = "generator"
# H.264 quality: CRF 10 (visually lossless at these sizes). The same value imageio's quality=8 gave.
MP4_CRF = 10


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


def name_max(folder: Path) -> int:
    """The longest file name (in bytes) the file system of `folder` (or its nearest existing parent)
    accepts; 255 where it cannot be asked."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def check_file_name(path: Path, reserve: int = 0) -> None:
    """ValueError unless `path`'s name (plus `reserve` bytes, e.g. for a `-12` or `_baseline` that may
    be added) fits the file system's name limit. Run before any work, so a long name fails at once."""
    path = Path(path)
    size, limit = len(os.fsencode(path.name)) + reserve, name_max(path.parent)
    if size > limit:
        raise ValueError(f"the file name '{path.name}' is {size} bytes long with what spectrum adds to it; "
                         f"the file system allows {limit}")


# --------------------------------------------------------------------------------------------------
# Output sets
# --------------------------------------------------------------------------------------------------


class WriteError(OSError):
    """A file of an output set could not be written whole (disk full, file-size limit, an encoder
    error, a file that does not read back): nothing of it was kept. `path` is the final name asked
    for, `reason` what went wrong; `errno` is the system's error number when there is one."""

    def __init__(self, path: Path, reason: str, errno_: int | None = None):
        super().__init__(errno_, reason, str(path))
        self.path, self.reason = Path(path), reason

    def __str__(self) -> str:
        return f"'{self.path}' was not written: {self.reason}"


@dataclass
class _Staged:
    final: Path                              # the name asked for (renumbered at commit if taken)
    tmp: Path
    inode: int
    replace: Callable[[Path], bool] | None   # None: obey the set's overwrite flag


class OutputSet:
    """Files that appear together or not at all.

    `add` (or `add_png`, `add_mp4`, `add_json`) writes each file to a temporary name and checks it; `commit` moves
    them all to their final names, or — on any failure or interrupt — removes every temporary and
    every new file it had placed and puts back any file it had replaced. Leaving the `with` block
    without `commit` discards the set.

    - `overwrite=False`: a taken name is never replaced. With `renumber=True` the whole set then moves
      to the next free number (`NAME-1.png`, `NAME-1_ab.png`, …; every file's name must start with the
      first file's stem), else commit raises FileExistsError naming the file.
    - `overwrite=True`: a taken name is replaced, unless the file was added with a `replace` predicate
      that rejects what is there (e.g. a sidecar name held by a JSON file spectrum did not write).
    - `then(paths)` runs after the files are in place and before the set counts as committed; if it
      raises, the files are removed again (a batch appends its manifest line there).
    """

    def __init__(self, *, overwrite: bool = False, renumber: bool = False):
        self.overwrite, self.renumber = overwrite, renumber
        self._staged: list[_Staged] = []
        self._done = False

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.discard()

    @property
    def stem(self) -> str | None:
        return self._staged[0].final.stem if self._staged else None

    def add(self, path: Path, write: Callable[[Path], None], verify: Callable[[Path], None] | None = None,
            replace: Callable[[Path], bool] | None = None) -> Path:
        """Write one file of the set now: `write(tmp)`, then `verify(tmp)` (raises if the file is bad).
        The temporary file keeps `path`'s extension (ffmpeg picks the container from it)."""
        if self._done:
            raise RuntimeError("this OutputSet is already committed or discarded")
        path = Path(path)
        if self.renumber and self._staged and not path.name.startswith(self.stem):
            raise ValueError(f"'{path.name}' does not start with the set's stem '{self.stem}'")
        tmp: Path | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:40]}.", suffix=f".part{path.suffix}")
            os.close(fd)
            tmp = Path(tmp_name)
            write(tmp)
            if verify is not None:
                verify(tmp)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a finished file gets the usual mode
            self._staged.append(_Staged(path, tmp, os.lstat(tmp).st_ino, replace))
        except BaseException as exc:  # also KeyboardInterrupt: never leave the temporary file behind
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, WriteError):
                raise WriteError(path, exc.reason, exc.errno) from None
            if isinstance(exc, OSError) and exc.errno is not None:
                raise WriteError(path, exc.strerror or str(exc), exc.errno) from exc
            raise
        return path

    def add_png(self, path: Path, image: Image.Image, metadata: dict[str, Any]) -> Path:
        """Add a PNG with `metadata` in its text chunks (see `read_png_metadata`)."""
        return self.add(path, *_png_writer(image, metadata))

    def add_mp4(self, path: Path, frames: np.ndarray, fps: int, metadata: dict[str, Any] | None = None) -> Path:
        """Add an H.264 MP4 of `frames` (F, H, W, 3) and, with `metadata`, its sidecar JSON (same name,
        `.json`). The sidecar's name is replaced only if what holds it is a spectrum sidecar."""
        self.add(path, *_mp4_writer(frames, fps))
        if metadata is not None:
            self.add_json(sidecar_path(path), {GENERATOR_KEY: "spectrum", **metadata}, replace=made_by_spectrum)
        return path

    def add_json(self, path: Path, data: Any, replace: Callable[[Path], bool] | None = None) -> Path:
        """Add a JSON file (strict JSON: a NaN or infinity raises ValueError)."""
        blob = dumps(data, indent=2) + "\n"
        return self.add(path, lambda tmp: tmp.write_text(blob, encoding="utf-8"),
                        lambda tmp: json.loads(tmp.read_text(encoding="utf-8")), replace)

    def names(self, n: int) -> list[Path]:
        """The final names of the set's files for number `n` (0: as added)."""
        if n == 0:
            return [s.final for s in self._staged]
        stem, tag = self.stem, f"{self.stem}-{n}"
        return [s.final.with_name(tag + s.final.name[len(stem):]) for s in self._staged]

    def commit(self, then: Callable[[list[Path]], None] | None = None) -> list[Path]:
        """Move every file to its final name (see the class docstring); returns the names used.
        SIGINT/SIGTERM arriving meanwhile are delivered once the set is whole or gone."""
        if self._done:
            raise RuntimeError("this OutputSet is already committed or discarded")
        with deferred_interrupts():
            try:
                for n in range(10_000 if self.renumber else 1):
                    finals = self.names(n)
                    placed = self._place(finals)
                    if placed is not None:
                        break
                else:
                    raise FileExistsError(f"'{self._staged[0].final}' and 9,999 numbered variants already exist")
                try:
                    if then is not None:
                        then(finals)
                except BaseException:
                    _undo(placed)
                    raise
                for _, backup, _ in placed:
                    if backup is not None:
                        backup.unlink(missing_ok=True)
            finally:
                self.discard()
        return finals

    def discard(self) -> None:
        """Remove the temporary files; nothing of the set appears."""
        self._done = True
        for s in self._staged:
            s.tmp.unlink(missing_ok=True)

    def _place(self, finals: Sequence[Path]) -> list[tuple[Path, Path | None, int]] | None:
        """Link each file to its final name. None if a name is taken and may not be replaced (with
        what was placed undone), so the caller can try the next number; other errors raise (undone)."""
        placed: list[tuple[Path, Path | None, int]] = []  # (final, backup of a replaced file, inode)
        try:
            for s, final in zip(self._staged, finals):
                if not os.path.lexists(final) and _link_new(s.tmp, final):
                    placed.append((final, None, s.inode))
                    continue
                # The name is taken (perhaps just now, by a concurrent run).
                is_dir = os.path.isdir(final) and not os.path.islink(final)
                replaceable = not is_dir and (s.replace is None or s.replace(final))
                if self.overwrite and replaceable:
                    placed.append((final, _backup(final), s.inode))
                    os.replace(s.tmp, final)
                elif self.renumber:
                    _undo(placed)
                    return None
                elif is_dir:
                    raise IsADirectoryError(errno.EISDIR, "a folder has that name", str(final))
                else:
                    raise OutputExists(final, replaceable)
        except BaseException:
            _undo(placed)
            raise
        return placed


class OutputExists(FileExistsError):
    """A final name is taken and may not be replaced. `replaceable`: whether overwriting would be
    allowed (False: the file there is not a spectrum output, so even overwrite leaves it alone)."""

    def __init__(self, path: Path, replaceable: bool):
        reason = "already exists" if replaceable else "already exists and was not written by spectrum, so it is not replaced"
        super().__init__(errno.EEXIST, f"'{path}' {reason}", str(path))
        self.path, self.replaceable = Path(path), replaceable

    def __str__(self) -> str:
        return self.strerror


def _link_new(tmp: Path, final: Path) -> bool:
    """Give `tmp` the name `final` unless that name is taken (then False). Atomic: a hard link fails
    if the name exists; on file systems without hard links, an O_EXCL creation reserves it."""
    try:
        os.link(tmp, final)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
    try:
        os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    os.replace(tmp, final)
    return True


def _backup(final: Path) -> Path:
    """Keep the file at `final` under a hidden name beside it, so a failed commit can put it back."""
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem[:40]}.", suffix=".replaced")
    os.close(fd)
    backup = Path(name)
    try:
        if not _hardlink_over(final, backup):
            os.replace(final, backup)  # no hard links here: move it aside (the name is briefly free)
    except BaseException:
        backup.unlink(missing_ok=True)
        raise
    return backup


def _hardlink_over(src: Path, dst: Path) -> bool:
    """Make `dst` a second name of `src` (src stays in place). False where hard links do not work."""
    try:
        os.unlink(dst)
        os.link(src, dst, follow_symlinks=False)
        return True
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            return False
        raise


def _undo(placed: list[tuple[Path, Path | None, int]]) -> None:
    """Remove the files this set placed (only if the name still holds our file) and restore backups."""
    for final, backup, inode in reversed(placed):
        try:
            if os.lstat(final).st_ino == inode:
                if backup is not None:
                    os.replace(backup, final)
                else:
                    os.unlink(final)
            elif backup is not None:
                backup.unlink(missing_ok=True)
        except FileNotFoundError:
            if backup is not None:
                os.replace(backup, final)
        except OSError:
            pass
    placed.clear()


def _umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux's /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0)  # elsewhere the only way to read it is to set it (and put it back at once)
    os.umask(mask)
    return mask


def output_files(path: Path) -> list[Path]:
    """Every file a single output at `path` consists of: an MP4 and its sidecar, or the file alone."""
    path = Path(path)
    return [path, sidecar_path(path)] if path.suffix.lower() == ".mp4" else [path]


def made_by_spectrum(path: Path) -> bool:
    """Whether the file at `path` is a spectrum output (a PNG with spectrum's metadata, a spectrum
    sidecar JSON, an MP4 whose sidecar is one): what --overwrite may replace beside the named file."""
    path = Path(path)
    try:
        suffix = path.suffix.lower()
        if suffix == ".png":  # spectrum's own text chunk is the mark
            with Image.open(path) as img:
                return PNG_METADATA_KEY in (getattr(img, "text", None) or {})
        if suffix == ".json":
            meta = json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".mp4":
            return made_by_spectrum(sidecar_path(path))
        else:
            return False
    except (OSError, ValueError, SyntaxError):
        return False
    return isinstance(meta, dict) and str(meta.get(GENERATOR_KEY, "")).startswith("spectrum")


def atomic_write(path: Path, write: Callable[[Path], None], overwrite: bool = False,
                 verify: Callable[[Path], None] | None = None) -> Path:
    """One file as a set of one: `write(tmp)` beside `path`, `verify(tmp)`, then into place. Without
    `overwrite` an existing `path` raises FileExistsError and is never clobbered."""
    with OutputSet(overwrite=overwrite) as out:
        out.add(path, write, verify)
        return out.commit()[0]


def dumps(data: Any, **kwargs: Any) -> str:
    """Strict JSON (no NaN or Infinity, which JSON does not have: ValueError instead); non-JSON types
    such as paths as strings."""
    return json.dumps(data, allow_nan=False, default=str, **kwargs)


def finite_or_none(x: float | None, ndigits: int | None = 4) -> float | None:
    """`x` rounded, or None if it is missing or not finite (JSON's null for an infinite PSNR)."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, ndigits) if ndigits is not None else x


def append_line(path: Path, text: str) -> None:
    """Append one line to a text file (a JSONL manifest) as a whole or not at all: under an
    exclusive lock, after a newline if a crashed writer left a partial line, and cut back to its
    previous length if the write fails."""
    data = text.rstrip("\n").encode("utf-8") + b"\n"
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        _lock(fd)
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)  # also releases the lock


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: appends are not locked
        return
    fcntl.flock(fd, fcntl.LOCK_EX)


# --------------------------------------------------------------------------------------------------
# PNG, JSON, MP4
# --------------------------------------------------------------------------------------------------


def _parameters_line(meta: dict[str, Any]) -> str:
    prompt = meta.get("prompt", "")
    rest = ", ".join(f"{k}: {v}" for k, v in meta.items() if k != "prompt" and not isinstance(v, (dict, list)))
    return f"{prompt}\n{rest}" if rest else prompt


def _png_writer(image: Image.Image, metadata: dict[str, Any]) -> tuple[Callable[[Path], None], Callable[[Path], None]]:
    info = PngInfo()
    info.add_text(PNG_PARAMETERS_KEY, _parameters_line(metadata))
    info.add_text(PNG_METADATA_KEY, dumps(metadata))

    def verify(tmp: Path) -> None:
        try:
            with Image.open(tmp) as img:
                img.verify()  # chunk CRCs: catches a truncated file
            with Image.open(tmp) as img:
                size = img.size
        except (OSError, SyntaxError) as exc:
            raise WriteError(tmp, f"the PNG does not read back ({exc})") from None
        if size != image.size:
            raise WriteError(tmp, f"the PNG reads back as {size[0]}x{size[1]}, not {image.size[0]}x{image.size[1]}")

    return (lambda tmp: image.save(tmp, format="PNG", pnginfo=info)), verify


def save_png(path: Path, image: Image.Image, metadata: dict[str, Any], overwrite: bool = False) -> Path:
    """Write `image` as PNG with `metadata` in its text chunks (see `read_png_metadata`)."""
    write, verify = _png_writer(image, metadata)
    return atomic_write(path, write, overwrite=overwrite, verify=verify)


def read_png_metadata(path: Path) -> dict[str, Any]:
    """The settings `save_png` stored, as a dict ({} for a PNG without them)."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}) or {}
    return json.loads(text[PNG_METADATA_KEY]) if PNG_METADATA_KEY in text else {}


def save_json(path: Path, data: Any, overwrite: bool = False) -> Path:
    with OutputSet(overwrite=overwrite) as out:
        out.add_json(path, data)
        return out.commit()[0]


def sidecar_path(video_path: Path) -> Path:
    return Path(video_path).with_suffix(".json")


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Float frames in [0, 1] (what diffusers' `output_type="np"` returns) to uint8; uint8 passes
    through. Non-finite values raise ValueError instead of becoming black pixels."""
    frames = np.asarray(frames)
    if frames.dtype == np.uint8:
        return frames
    if not np.isfinite(frames).all():
        raise ValueError("the frames contain NaN or infinite values")
    return (np.clip(frames, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _even_frames(frames: np.ndarray) -> np.ndarray:
    video = to_uint8(frames)
    if video.ndim != 4 or video.shape[-1] != 3 or not all(video.shape[:3]):
        raise ValueError(f"expected frames of shape (F, H, W, 3), got {video.shape}")
    pad_h, pad_w = video.shape[1] % 2, video.shape[2] % 2  # yuv420p needs even sizes
    if pad_h or pad_w:
        video = np.pad(video, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(video)


def _mp4_writer(frames: np.ndarray, fps: int) -> tuple[Callable[[Path], None], Callable[[Path], None]]:
    """Encode with imageio-ffmpeg's ffmpeg binary, checking its exit status, and verify by decoding."""
    video = _even_frames(frames)
    count, height, width = video.shape[:3]
    if not (isinstance(fps, (int, Fraction)) or float(fps).is_integer()) or not 0 < fps <= 1000:
        raise ValueError(f"fps must be a whole number from 1 to 1000, got {fps}")

    def write(tmp: Path) -> None:
        import imageio_ffmpeg

        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-f", "rawvideo", "-vcodec", "rawvideo",
               "-s", f"{width}x{height}", "-pix_fmt", "rgb24", "-r", str(Fraction(int(fps))), "-i", "-", "-an",
               "-vcodec", "libx264", "-pix_fmt", "yuv420p", "-crf", str(MP4_CRF), "-v", "error", str(tmp)]
        # Its own process group: a terminal's Ctrl-C reaches only us; subprocess.run kills ffmpeg when
        # we are interrupted.
        proc = subprocess.run(cmd, input=video.tobytes(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              process_group=0)
        if proc.returncode != 0:
            raise WriteError(tmp, f"ffmpeg {_exit_status(proc.returncode)}" + _last_line(proc.stderr))

    def verify(tmp: Path) -> None:
        import imageio_ffmpeg

        try:
            reader = imageio_ffmpeg.read_frames(str(tmp))
            size = next(reader)["size"]
            n = sum(1 for _ in reader)
        except (OSError, RuntimeError, StopIteration, KeyError) as exc:
            raise WriteError(tmp, f"the MP4 does not read back ({_last_line(str(exc).encode()).strip(': ')})") from None
        if (n, tuple(size)) != (count, (width, height)):
            raise WriteError(tmp, f"the MP4 reads back as {n} frames of {size[0]}x{size[1]}, "
                                   f"not {count} of {width}x{height}")

    return write, verify


def _exit_status(code: int) -> str:
    if code < 0:
        try:
            import signal

            name = signal.Signals(-code).name
            return f"was killed by {name}" + (" (the file-size limit was reached)" if name == "SIGXFSZ" else "")
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _last_line(stderr: bytes | None) -> str:
    lines = [ln.strip() for ln in (stderr or b"").decode("utf-8", "replace").splitlines() if ln.strip()]
    return f": {lines[-1]}" if lines else ""


def save_mp4(path: Path, frames: np.ndarray, fps: int, metadata: dict[str, Any] | None = None,
             overwrite: bool = False) -> Path:
    """Write `frames` (F, H, W, 3) as an H.264 MP4 plus, with `metadata`, a sidecar JSON next to it
    (same name, `.json`), as one set. Odd sizes are padded to even, as yuv420p needs."""
    with OutputSet(overwrite=overwrite) as out:
        out.add_mp4(path, frames, fps, metadata)
        return out.commit()[0]


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
