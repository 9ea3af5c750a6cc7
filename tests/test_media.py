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


# --- Output sets: all files or none ------------------------------------------------------------------

def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def _text(tmp, text):
    tmp.write_text(text)


def test_set_commits_every_file_or_none_when_a_write_fails(tmp_path):
    def broken(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(media.WriteError, match="b.txt' was not written: No space left"):
        with media.OutputSet() as out:
            out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "a"))
            out.add(tmp_path / "b.txt", broken)
            out.commit()
    assert _names(tmp_path) == []


def test_set_takes_no_name_that_is_taken_and_keeps_what_was_there(tmp_path):
    (tmp_path / "b.txt").write_text("someone else's")
    with pytest.raises(media.OutputExists, match="b.txt' already exists") as info:
        with media.OutputSet() as out:
            out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "a"))
            out.add(tmp_path / "b.txt", lambda tmp: _text(tmp, "b"))
            out.commit()
    assert info.value.replaceable and info.value.path == tmp_path / "b.txt"
    assert _names(tmp_path) == ["b.txt"] and (tmp_path / "b.txt").read_text() == "someone else's"


def test_failed_overwrite_puts_the_replaced_files_back(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").mkdir()  # the set's second name is a folder: the commit fails after a.txt
    with pytest.raises(IsADirectoryError):
        with media.OutputSet(overwrite=True) as out:
            out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "new a"))
            out.add(tmp_path / "b.txt", lambda tmp: _text(tmp, "new b"))
            out.commit()
    assert _names(tmp_path) == ["a.txt", "b.txt"] and (tmp_path / "a.txt").read_text() == "old a"


def test_then_failing_undoes_the_commit(tmp_path):
    (tmp_path / "a.txt").write_text("old a")

    def then(paths):
        assert [p.read_text() for p in paths] == ["new a", "b"]  # in place when `then` runs
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        with media.OutputSet(overwrite=True) as out:
            out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "new a"))
            out.add(tmp_path / "b.txt", lambda tmp: _text(tmp, "b"))
            out.commit(then=then)
    assert _names(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"


def test_renumber_moves_the_whole_set_to_the_next_free_number(tmp_path):
    (tmp_path / "x_ab.png").write_text("unrelated")  # only one file of the set is taken
    (tmp_path / "x-1.png").write_text("unrelated")
    with media.OutputSet(renumber=True) as out:
        out.add(tmp_path / "x.png", lambda tmp: _text(tmp, "main"))
        out.add(tmp_path / "x_ab.png", lambda tmp: _text(tmp, "ab"))
        assert out.commit() == [tmp_path / "x-2.png", tmp_path / "x-2_ab.png"]
    assert _names(tmp_path) == ["x-1.png", "x-2.png", "x-2_ab.png", "x_ab.png"]
    assert (tmp_path / "x_ab.png").read_text() == "unrelated"
    with pytest.raises(ValueError, match="stem 'y'"), media.OutputSet(renumber=True) as out:
        out.add(tmp_path / "y.png", lambda tmp: _text(tmp, "y"))  # the first file sets the stem
        out.add(tmp_path / "z.png", lambda tmp: _text(tmp, "z"))
    assert not (tmp_path / "y.png").exists()


@pytest.fixture
def sigint_handler():
    """Set SIGINT's handler for one test and restore the one before. A test cannot assume Ctrl-C raises
    KeyboardInterrupt: a process started with SIGINT ignored (a background job of a non-interactive
    shell, nohup, some CI runners) keeps it ignored, and Python then installs no handler of its own."""
    import signal

    previous = signal.getsignal(signal.SIGINT)
    yield lambda handler: signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGINT, previous)


def _ctrl_c(paths):
    """Ctrl-C right between the files and the manifest line. Sent to the main thread itself: a signal
    sent to the process may be taken by another thread and reach Python's handler a little later."""
    import signal
    import threading

    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def test_interrupt_during_commit_waits_until_the_set_is_whole(tmp_path, sigint_handler):
    import signal

    sigint_handler(signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt):
        with media.OutputSet() as out:
            out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "a"))
            out.add(tmp_path / "b.txt", lambda tmp: _text(tmp, "b"))
            out.commit(then=_ctrl_c)
    assert _names(tmp_path) == ["a.txt", "b.txt"]  # delivered after the set was whole


def test_an_ignored_interrupt_stays_ignored_through_a_commit(tmp_path, sigint_handler):
    import signal

    sigint_handler(signal.SIG_IGN)
    with media.OutputSet() as out:
        out.add(tmp_path / "a.txt", lambda tmp: _text(tmp, "a"))
        assert out.commit(then=_ctrl_c) == [tmp_path / "a.txt"]
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and _names(tmp_path) == ["a.txt"]


def test_overwrite_replaces_spectrum_files_only(tmp_path):
    frames = np.zeros((3, 16, 16, 3), dtype=np.uint8)
    media.save_mp4(tmp_path / "v.mp4", frames, fps=8, metadata={"prompt": "first"})
    media.save_mp4(tmp_path / "v.mp4", frames, fps=8, metadata={"prompt": "second"}, overwrite=True)
    assert '"second"' in (tmp_path / "v.json").read_text()
    (tmp_path / "w.json").write_text('{"my": "notes"}')
    with pytest.raises(media.OutputExists, match="not written by spectrum") as info:
        media.save_mp4(tmp_path / "w.mp4", frames, fps=8, metadata={"prompt": "x"}, overwrite=True)
    assert not info.value.replaceable
    assert _names(tmp_path) == ["v.json", "v.mp4", "w.json"] and "notes" in (tmp_path / "w.json").read_text()
    assert media.made_by_spectrum(tmp_path / "v.mp4") and not media.made_by_spectrum(tmp_path / "w.json")
    media.save_png(tmp_path / "p.png", _image(), {"prompt": "p"})
    _image().save(tmp_path / "q.png")
    assert media.made_by_spectrum(tmp_path / "p.png") and not media.made_by_spectrum(tmp_path / "q.png")


def test_a_taken_sidecar_name_counts_when_renumbering(tmp_path):
    (tmp_path / "v.json").write_text("{}")
    with media.OutputSet(renumber=True) as out:
        out.add_mp4(tmp_path / "v.mp4", np.zeros((3, 16, 16, 3), dtype=np.uint8), 8, {"prompt": "p"})
        assert out.commit() == [tmp_path / "v-1.mp4", tmp_path / "v-1.json"]


# --- MP4: encoder status and read-back ------------------------------------------------------------

def test_failed_encode_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(media, "MP4_CRF", "ten")  # an option ffmpeg cannot parse: it exits non-zero
    with pytest.raises(media.WriteError, match=r"v.mp4' was not written: ffmpeg exited with status \d+"):
        media.save_mp4(tmp_path / "v.mp4", np.zeros((3, 16, 16, 3), dtype=np.uint8), fps=8, metadata={"a": 1})
    assert _names(tmp_path) == []


def test_mp4_read_back_checks_frames_and_size(tmp_path):
    media.save_mp4(tmp_path / "three.mp4", np.zeros((3, 16, 16, 3), dtype=np.uint8), fps=8)
    _, verify_nine = media._mp4_writer(np.zeros((9, 16, 16, 3), dtype=np.uint8), 8)
    with pytest.raises(media.WriteError, match="3 frames of 16x16, not 9 of 16x16"):
        verify_nine(tmp_path / "three.mp4")
    (tmp_path / "cut.mp4").write_bytes((tmp_path / "three.mp4").read_bytes()[:200])
    with pytest.raises(media.WriteError, match="does not read back"):
        verify_nine(tmp_path / "cut.mp4")


def test_truncated_png_does_not_verify(tmp_path):
    write, verify = media._png_writer(_image(), {"prompt": "x"})
    write(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes()[:-30])
    verify(tmp_path / "a.png")
    with pytest.raises(media.WriteError, match="does not read back"):
        verify(tmp_path / "b.png")


# --- Non-finite values and strict JSON --------------------------------------------------------------

def test_non_finite_frames_and_metadata_are_refused(tmp_path):
    frames = np.full((3, 16, 16, 3), 0.5, dtype=np.float32)
    frames[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        media.save_mp4(tmp_path / "v.mp4", frames, fps=8)
    with pytest.raises(ValueError, match="JSON compliant"):
        media.save_png(tmp_path / "a.png", _image(), {"psnr": float("inf")})
    with pytest.raises(ValueError, match="JSON compliant"):
        media.dumps({"x": float("nan")})
    assert _names(tmp_path) == []
    assert media.finite_or_none(float("inf")) is None and media.finite_or_none(1.23456) == 1.2346


def test_append_line_repairs_a_cut_line_and_is_whole_or_absent(tmp_path, monkeypatch):
    manifest = tmp_path / "results.jsonl"
    manifest.write_text('{"a": 1}\n{"cut')  # a writer died mid-line
    media.append_line(manifest, '{"b": 2}')
    assert manifest.read_text() == '{"a": 1}\n{"cut\n{"b": 2}\n'
    before = manifest.read_bytes()
    real_write, calls = os.write, []

    def failing_write(fd, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data)[:3])  # a short write, then the disk is full

    monkeypatch.setattr(media.os, "write", failing_write)
    with pytest.raises(OSError, match="No space"):
        media.append_line(manifest, '{"c": 3}')
    assert manifest.read_bytes() == before


def test_file_names_within_the_file_system_limit(tmp_path):
    media.check_file_name(tmp_path / ("a" * 200 + ".png"))
    with pytest.raises(ValueError, match="allows 255"):
        media.check_file_name(tmp_path / ("a" * 300 + ".png"))
    with pytest.raises(ValueError, match="with what spectrum adds"):
        media.check_file_name(tmp_path / ("a" * 250 + ".png"), reserve=10)
    long_stem = "b" * 250  # the temporary name stays short enough even for a name at the limit
    media.save_png(tmp_path / f"{long_stem}.png", _image(), {})
    assert _names(tmp_path) == [f"{long_stem}.png"]
