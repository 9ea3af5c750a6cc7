"""The embedded trained models draw what their prompts say, loaded the way a user's model is loaded.

Each model is read from its pipeline folder inside the package (``spectrum_core/models/embedded/NAME``) with
``from_pretrained`` through the same ``load_pipeline`` as every preset, and sampled with its preset's call
(50 steps, the trained size; the video model with classifier-free guidance, i.e. separate cond and uncond
transformer calls per step, as Wan). Pass/fail per output is the pixel-statistics criterion of
``spectrum_core.models.shapes.check_image`` / ``spectrum_core.models.moving.check_clip``: background and shape
colour are the nearest palette colours and within tolerance, the shape class follows from the fill ratio
of its bounding box, and a clip's direction from its centroid's travel. The README states the same
criteria and thresholds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spectrum_cli.main import app
from spectrum_core import apply_spectrum
from spectrum_core.app import media, metrics
from spectrum_core.models import moving as moving_shapes, shapes
from spectrum_core.method.config import SpectrumConfig
from spectrum_core.app.presets import load_preset
from spectrum_core.app.request import check_weights
from spectrum_core.app.runner import load_pipeline

from conftest import generate

# name -> (its world, prompts checked, minimum pass rates)
MODELS = {
    "shapes": (shapes, 24, {"background": 0.9, "colour": 0.9, "shape": 0.8}),
    "moving": (moving_shapes, 24, {"background": 0.9, "colour": 0.9, "shape": 0.8, "direction": 0.9}),
}
N_COMPARED = 8  # prompts on which the forecasts are compared with the 50-step outputs
BUDGET = 14     # real passes of 50 (per branch): the reference default, alpha = 0.75


def _methods(preset) -> dict[str, SpectrumConfig]:
    """Every forecaster the CLI offers at ``BUDGET`` real passes: the preset's own Spectrum setting (the
    default), the paper's pure Chebyshev predictor (w=1), Taylor and reuse, all on Spectrum's schedule."""
    default = preset.spectrum.config.replace(nfe=BUDGET)
    return {
        "default": default,
        "spectrum w=1": default.replace(forecaster="chebyshev", blend=1.0),
        "taylor": default.replace(forecaster="taylor"),
        "reuse": default.replace(forecaster="reuse"),
    }


def _load(name: str):
    preset = load_preset(name)
    check_weights(preset)  # the folder ships in the package: no skip, a missing model fails here
    pipe = load_pipeline(preset, "cpu", torch.float32)
    pipe.set_progress_bar_config(disable=True)
    return preset, pipe


def _cfg(preset) -> bool:
    return preset.guidance is not None and preset.guidance > 1


def _sample(preset, pipe, prompts: list[str], seed: int = 0) -> np.ndarray:
    """The preset's call (size, frames, guidance, its [call] table) on a batch of prompts; decoded outputs
    in [0, 1], one per prompt."""
    kw = dict(preset.call, height=preset.height, width=preset.width)
    kw[preset.guidance_kwarg] = preset.guidance
    if isinstance(kw.get("negative_prompt"), str):
        kw["negative_prompt"] = [kw["negative_prompt"]] * len(prompts)  # one per prompt in a batch
    if preset.is_video:
        kw["num_frames"] = preset.frames
    return generate(pipe, None, preset.steps, seed, prompt=prompts, output_type="np", **kw)


def _check(world, output: np.ndarray, prompt: str) -> dict[str, bool]:
    pixels = (np.clip(output, 0, 1) * 255).round().astype(np.uint8)
    return world.check_clip(pixels, prompt) if world is moving_shapes else world.check_image(pixels, prompt)


def _rates(checks: list[dict[str, bool]]) -> dict[str, float]:
    return {k: float(np.mean([c[k] for c in checks])) for k in checks[0]}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    name = request.param
    world, n, thresholds = MODELS[name]
    preset, pipe = _load(name)
    prompts = world.eval_prompts(n)
    return {"name": name, "world": world, "preset": preset, "pipe": pipe, "prompts": prompts,
            "thresholds": thresholds, "outputs": _sample(preset, pipe, prompts), "runs": {}}


def _reseeded(model) -> np.ndarray:
    """The 50-step outputs of the first ``N_COMPARED`` prompts with seed 1 instead of 0 (computed once)."""
    if "seed 1" not in model["runs"]:
        model["runs"]["seed 1"] = _sample(model["preset"], model["pipe"], model["prompts"][:N_COMPARED], seed=1)
    return model["runs"]["seed 1"]


def test_draws_what_the_prompt_says(model):
    world, prompts = model["world"], model["prompts"]
    assert len(set(prompts)) == len(prompts) >= 24
    assert {world.parse_prompt(p)[1] for p in prompts} == set(shapes.SHAPES)
    rates = _rates([_check(world, out, p) for out, p in zip(model["outputs"], prompts)])
    for key, minimum in model["thresholds"].items():
        assert rates[key] >= minimum, (key, rates)


def test_output_depends_on_prompt_and_seed_not_on_the_batch(model):
    """A prompt alone gives what it gave inside the batch (same seed, first position); another seed
    gives another picture."""
    alone = _sample(model["preset"], model["pipe"], model["prompts"][:1])
    assert np.abs(alone[0] - model["outputs"][0]).max() < 1e-4
    assert np.abs(_reseeded(model)[0] - alone[0]).mean() > 0.01


def _forecast(model, cfg: SpectrumConfig):
    """Per-prompt PSNR against the 50-step outputs and the pass rates of the first ``N_COMPARED`` prompts
    with ``cfg`` (computed once per model and configuration: several tests compare the same runs)."""
    if cfg not in model["runs"]:
        preset, pipe, world = model["preset"], model["pipe"], model["world"]
        prompts, full = model["prompts"][:N_COMPARED], model["outputs"][:N_COMPARED]
        with apply_spectrum(pipe, cfg) as handle:
            fast = _sample(preset, pipe, prompts)
            branches = handle.stats.nfe_by_branch
        assert list(branches.values()) == [cfg.nfe] * (2 if _cfg(preset) else 1), branches  # cond, uncond
        psnr = np.array([metrics.psnr(f, r) for f, r in zip(fast, full)])
        model["runs"][cfg] = psnr, _rates([_check(world, out, p) for out, p in zip(fast, prompts)])
    return model["runs"][cfg]


def test_default_keeps_the_prompt_on_the_trained_model(model):
    """At the default 14 of 50 real passes (per branch), the preset's Spectrum outputs still show their
    prompts: per criterion they lose at most one of the prompts that the 50-step outputs pass."""
    _, rates = _forecast(model, _methods(model["preset"])["default"])
    n = N_COMPARED
    full = _rates([_check(model["world"], out, p) for out, p in zip(model["outputs"][:n], model["prompts"][:n])])
    for key in full:
        assert rates[key] >= full[key] - 1 / n - 1e-9, (key, rates, full)


def test_every_forecast_is_far_closer_to_its_full_step_output_than_another_seed(model):
    """The floor any forecaster must clear at 14 of 50: its outputs are closer to the 50-step outputs of
    the same seed than the model's own seed-to-seed variation by at least 10 dB, i.e. the forecast's
    squared error is at most a tenth of the difference between two samples of the same prompt. The floor
    comes from the full-step model alone, so a forecaster that improves can only clear it by more."""
    full = model["outputs"][:N_COMPARED]
    floor = float(np.mean([metrics.psnr(o, f) for o, f in zip(_reseeded(model), full)])) + 10.0
    psnr = {name: float(_forecast(model, cfg)[0].mean()) for name, cfg in _methods(model["preset"]).items()}
    assert all(value > floor for value in psnr.values()), (floor, psnr)


def test_more_real_passes_never_make_the_default_worse(model):
    """10 -> 14 -> 20 real passes of 50: the default's mean PSNR against the 50-step outputs does not
    drop by more than its noise (two standard errors of the per-prompt differences)."""
    default = _methods(model["preset"])["default"]
    budgets = (10, BUDGET, 20)
    psnr = [_forecast(model, default.replace(nfe=k))[0] for k in budgets]
    for k, fewer, more in zip(budgets[1:], psnr, psnr[1:]):
        gain = more - fewer
        noise = 2 * gain.std(ddof=1) / np.sqrt(len(gain))
        assert gain.mean() >= -noise, (k, gain.mean(), noise)


def test_cli_default_run_writes_what_the_prompt_says(model, tmp_path, monkeypatch):
    """`spectrum gen PROMPT -m NAME`: a PNG or an MP4 (read back from disk) that passes its check."""
    monkeypatch.chdir(tmp_path)
    prompt = model["prompts"][0]
    result = CliRunner().invoke(app, ["gen", prompt, "-m", model["name"], "--seed", "0", "--json"])
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["model"] == model["name"] and rec["nfe"] == 14 and rec["steps"] == 50
    path = rec["output"]
    if model["preset"].is_video:
        pixels = media.read_mp4(path)
        assert pixels.shape[0] == model["preset"].frames
    else:
        pixels = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(path).convert("RGB"))
    check = _check(model["world"], pixels.astype(np.float32) / 255.0, prompt)
    assert all(check.values()), check
