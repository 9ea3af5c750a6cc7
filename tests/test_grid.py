"""`spectrum grid` and `spectrum_core.app.grid`: the method-comparison picture, on tiny models (few steps)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from spectrum_cli.main import app
from spectrum_core.app import media, metrics
from spectrum_core.app.grid import method_grid
from spectrum_core.app.presets import load_preset
from spectrum_core.app.request import RequestError
from spectrum_core.app.runner import Runner

STEPS, NFE = 10, 7


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_CACHE", os.environ.get("SPECTRUM_CACHE") or str(tmp_path_factory.getbasetemp()))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("model", ["tiny-flux", "tiny-wan"])
def test_grid_rows_columns_passes_and_psnr(model):
    runner = Runner(load_preset(model), device="cpu")
    prompts = ["a red circle on a navy background", "a cat"]
    grid = method_grid(runner, prompts, methods=("spectrum", "reuse"), seed=3, cell=40, steps=STEPS, nfe=NFE)
    assert grid.columns == ["none", "spectrum", "reuse"]
    assert [[c.method for c in row] for row in grid.rows] == [grid.columns] * 2
    for prompt, row in zip(prompts, grid.rows):
        full, *fast = row
        assert full.prompt == prompt and full.nfe == STEPS and full.psnr is None
        for cell in fast:
            assert cell.nfe == NFE and cell.steps == STEPS  # counted real passes, not configuration
            assert math.isfinite(cell.psnr) and 0 < cell.ssim <= 1
            assert cell.psnr == pytest.approx(metrics.psnr(cell.media, full.media), abs=1e-3)
    # Two rows of 40 px cells; a video cell holds three frames side by side.
    tiles = 3 if runner.preset.is_video else 1
    assert grid.image.height > 2 * 40 and grid.image.width > 3 * tiles * 40
    # The full-step cell is the full-step output, scaled with nearest neighbours.
    assert _contains(grid.image, grid.rows[0][0].media, 40)


def _contains(canvas: Image.Image, picture, cell: int) -> bool:
    frame = picture if isinstance(picture, Image.Image) else Image.fromarray(media.to_uint8(np.asarray(picture))[0])
    tile = np.asarray(frame.convert("RGB").resize((round(frame.width * cell / frame.height), cell), Image.NEAREST))
    big = np.asarray(canvas)
    h, w = tile.shape[:2]
    for y in range(big.shape[0] - h + 1):
        row = big[y]
        for x in np.flatnonzero((row[: big.shape[1] - w + 1] == tile[0, 0]).all(axis=1)):
            if np.array_equal(big[y:y + h, x:x + w], tile):
                return True
    return False


def test_grid_checks_every_request_before_running():
    runner = Runner(load_preset("tiny-flux"), device="cpu")
    with pytest.raises(RequestError, match="6 to"):
        method_grid(runner, ["a cat"], steps=STEPS, nfe=STEPS + 5)
    assert runner._pipe is None  # nothing loaded, nothing ran
    with pytest.raises(ValueError, match="Unknown method"):
        method_grid(runner, ["a cat"], methods=("spectrum", "magic"))


def test_grid_command_writes_png_and_json(tmp_path):
    out = tmp_path / "g.png"
    result = run("grid", "a red circle on a navy background", "-m", "tiny-flux", "--steps", str(STEPS),
                 "--nfe", str(NFE), "--methods", "spectrum,taylor", "--cell", "32", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["columns"] == ["none", "spectrum", "taylor"] and rec["output"] == str(out)
    assert [c["nfe"] for c in rec["cells"]] == [STEPS, NFE, NFE]
    assert Image.open(out).size[1] > 32
    assert media.read_png_metadata(out)["columns"] == rec["columns"]
    again = run("grid", "a cat", "-m", "tiny-flux", "--steps", str(STEPS), "--nfe", str(NFE), "-o", str(out))
    assert again.exit_code == 2 and "--overwrite" in again.stderr


@pytest.mark.parametrize("args, message", [
    (["--methods", "spectrum,magic"], "choose from spectrum, taylor, reuse"),
    (["--nfe", "60"], "choose 6 to 50"),
    (["-o", "grid.jpg"], "ending in .png"),
    (["--frames", "9"], "video models"),
    (["-m", "nope"], "Unknown model"),
])
def test_grid_bad_input_is_one_line_and_exit_2(args, message):
    result = run("grid", "a cat", *(["-m", "tiny-flux"] if "-m" not in args else []), *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
