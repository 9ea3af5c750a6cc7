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

# name -> (its world, prompts checked, minimum pass rates)
MODELS = {
    "shapes": (shapes, 24, {"background": 0.9, "colour": 0.9, "shape": 0.8}),
    "moving": (moving_shapes, 24, {"background": 0.9, "colour": 0.9, "shape": 0.8, "direction": 0.9}),
}

# name -> (closer, farther): at 14 of 50 real passes (per branch), the first method's output is closer to
# the 50-step output than the second's, by more than 1 dB of PSNR on the first 8 prompts. These are the
# orderings `spectrum bench` measures on 16 samples (BENCHMARKS.md), not the paper's claim: on the
# video model, reusing the last features or Taylor's local extrapolation stays closer than the Chebyshev
# fit over every real pass, and the test holds the models to what they were measured to do.
ORDERINGS = {
    "shapes": [("spectrum", "reuse")],
    "moving": [("reuse", "spectrum"), ("taylor", "spectrum")],
}
METHODS = {
    "spectrum": SpectrumConfig(forecaster="chebyshev", nfe=14, blend=0.5),
    "taylor": SpectrumConfig(forecaster="taylor", nfe=14),
    "reuse": SpectrumConfig(forecaster="reuse", nfe=14),
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
    kw = dict(preset.call, num_inference_steps=preset.steps, height=preset.height, width=preset.width,
              output_type="np")
    kw[preset.guidance_kwarg] = preset.guidance
    if isinstance(kw.get("negative_prompt"), str):
        kw["negative_prompt"] = [kw["negative_prompt"]] * len(prompts)  # one per prompt in a batch
    if preset.is_video:
        kw["num_frames"] = preset.frames
    out = pipe(prompts, generator=torch.Generator().manual_seed(seed), **kw)
    return np.asarray(out.frames if preset.is_video else out.images, dtype=np.float32)


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
    other = _sample(model["preset"], model["pipe"], model["prompts"][:1], seed=1)
    assert np.abs(other[0] - alone[0]).mean() > 0.01


def _psnr_and_rates(model, cfg: SpectrumConfig, n: int = 8):
    """Mean PSNR against the 50-step outputs and the pass rates of the first ``n`` prompts with ``cfg``
    (computed once per model and configuration: several tests compare the same runs)."""
    key = (cfg, n)
    if key not in model["runs"]:
        model["runs"][key] = _run_forecast(model, cfg, n)
    return model["runs"][key]


def _run_forecast(model, cfg: SpectrumConfig, n: int):
    preset, pipe, world = model["preset"], model["pipe"], model["world"]
    prompts, full = model["prompts"][:n], model["outputs"][:n]
    with apply_spectrum(pipe, cfg) as handle:
        fast = _sample(preset, pipe, prompts)
        branches = handle.stats.nfe_by_branch
    assert list(branches.values()) == [cfg.nfe] * (2 if _cfg(preset) else 1), branches  # cond, uncond
    psnr = float(np.mean([metrics.psnr(f, r) for f, r in zip(fast, full)]))
    return psnr, _rates([_check(world, out, p) for out, p in zip(fast, prompts)])


def test_spectrum_keeps_the_prompt_on_the_trained_model(model):
    """At the default 14 of 50 real passes (per branch), Spectrum's outputs still show their prompts: per
    criterion it loses at most one of the 8 prompts that the 50-step outputs pass."""
    n = 8
    _, rates = _psnr_and_rates(model, METHODS["spectrum"], n)
    full = _rates([_check(model["world"], out, p) for out, p in zip(model["outputs"][:n], model["prompts"][:n])])
    for key in full:
        assert rates[key] >= full[key] - 1 / n - 1e-9, (key, rates, full)


def test_fidelity_ordering_between_methods_on_the_trained_model(model):
    psnr = {m: _psnr_and_rates(model, METHODS[m])[0] for pair in ORDERINGS[model["name"]] for m in pair}
    for closer, farther in ORDERINGS[model["name"]]:
        assert psnr[closer] > psnr[farther] + 1.0, (closer, farther, psnr)


def test_blending_in_linear_extrapolation_helps_on_the_trained_model(model):
    """The reference scripts' w=0.5 beats the paper's pure Chebyshev predictor (w=1) at both budgets, as
    BENCHMARKS.md measures on 16 samples (every one of them)."""
    for nfe in (14, 10):
        blended, _ = _psnr_and_rates(model, SpectrumConfig(forecaster="chebyshev", nfe=nfe, blend=0.5))
        pure, _ = _psnr_and_rates(model, SpectrumConfig(forecaster="chebyshev", nfe=nfe, blend=1.0))
        assert blended > pure + 1.0, (nfe, blended, pure)


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
