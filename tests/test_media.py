"""Media writing: atomic, self-describing, never clobbering by accident."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from spectrum_core.app import media


def _image(w: int = 32, h: int = 24) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def test_png_metadata_round_trip(tmp_path):
    meta = {"prompt": "a red circle", "seed": 7, "nfe": 14, "real_steps": [0, 1, 2], "spectrum": {"blend": 0.5}}
    path = media.save_png(tmp_path / "a.png", _image(), meta)
    assert media.read_png_metadata(path) == meta
    with Image.open(path) as img:
        assert img.text[media.PNG_PARAMETERS_KEY].startswith("a red circle\nseed: 7, nfe: 14")
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_no_overwrite_unless_asked(tmp_path):
    path = media.save_png(tmp_path / "a.png", _image(), {"prompt": "one"})
    with pytest.raises(FileExistsError, match="already exists"):
        media.save_png(path, _image(), {"prompt": "two"})
    assert media.read_png_metadata(path)["prompt"] == "one"
    media.save_png(path, _image(), {"prompt": "two"}, overwrite=True)
    assert media.read_png_metadata(path)["prompt"] == "two"


@pytest.mark.parametrize("exc", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_nothing(tmp_path, exc):
    def write(tmp):
        tmp.write_bytes(b"half a file")
        raise exc()

    with pytest.raises(exc):
        media.atomic_write(tmp_path / "x.png", write)
    assert list(tmp_path.iterdir()) == []


def test_mp4_frames_and_sidecar(tmp_path):
    frames = np.linspace(0, 1, 9 * 33 * 47 * 3, dtype=np.float32).reshape(9, 33, 47, 3)  # odd sizes
    path = media.save_mp4(tmp_path / "v.mp4", frames, fps=8, metadata={"prompt": "waves", "frames": 9})
    video = media.read_mp4(path)
    assert video.shape == (9, 34, 48, 3)  # padded to even for yuv420p
    assert np.abs(video[:, :33, :47].astype(float) - media.to_uint8(frames)).mean() < 12  # lossy but close
    assert media.sidecar_path(path).read_text().count('"waves"') == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.json", "v.mp4"]


def test_side_by_side_shapes():
    both = media.side_by_side(_image(32, 24), _image(32, 24))
    assert both.size == (32 * 2 + 2, 24)
    video = media.side_by_side(np.zeros((5, 16, 16, 3)), np.ones((5, 16, 16, 3)))
    assert video.shape == (5, 16, 34, 3) and video.dtype == np.uint8
    assert (video[:, :, 16:18] == 255).all() and (video[:, :, 18:] == 255).all() and (video[:, :, :16] == 0).all()


def test_names():
    assert media.slugify("A red circle, on navy!") == "a-red-circle-on-navy"
    assert media.slugify("???") == "untitled"
    assert media.default_stem("tiny-flux", "A fox", 42, "cheb-nfe14") == "tiny-flux_a-fox_s42_cheb-nfe14"


def test_check_writable_dir(tmp_path):
    media.check_writable_dir(tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()
    (tmp_path / "file").touch()
    with pytest.raises(OSError, match="is a file"):
        media.check_writable_dir(tmp_path / "file" / "sub")
