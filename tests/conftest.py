"""Shared fixtures: tiny pipelines of every family, built once per test session into a temp cache."""

import numpy as np
import pytest
import torch

from spectrum_core.hooks.families import output_samples, prompt_kwargs, variant
from spectrum_core.models.tiny import FAMILIES, TINY_CALL_KWARGS, load_tiny_pipeline

# Tiny models run fastest on one thread (a second one only adds synchronisation), and CI has two cores.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("spectrum-cache")


@pytest.fixture(scope="session")
def tiny_pipes(tiny_cache):
    """family -> pipeline, loaded lazily through from_pretrained and shared by the session's tests."""
    loaded = {}

    def get(family):
        if family not in loaded:
            loaded[family] = load_tiny_pipeline(family, cache_dir=tiny_cache)
            loaded[family].set_progress_bar_config(disable=True)
        return loaded[family]

    return get


def generate(pipe, family, steps, seed=0, prompt="a red circle on a navy background", output_type="latent", **overrides):
    """The one seeded pipeline call of the suite: ``pipe`` run for ``steps`` with the noise of ``seed``
    (a fresh CPU generator, so a call is repeatable on its own); the output as a float64 numpy array.

    ``family`` names a tiny family whose ``TINY_CALL_KWARGS`` are the base of the call, or is None for a call
    made only of ``overrides`` (the embedded models pass their preset's call). ``prompt`` may be a list
    (a batch). Latents by default: the hooks act on the transformer, and skipping the VAE keeps the suite
    fast; ``output_type="np"`` gives decoded images (N, H, W, 3) or videos (N, F, H, W, 3) in [0, 1].
    """
    kwargs = {**(TINY_CALL_KWARGS[family] if family is not None else {}), **overrides}
    words = prompt_kwargs(variant(family)[1], prompt, getattr(pipe, "labels", None)) if family else {"prompt": prompt}
    result = pipe(
        **words,  # by name: FLUX.2 Klein's first argument is `image`; DiT's prompt is its class ids
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type=output_type,
        **kwargs,
    )
    out = output_samples(result)
    if isinstance(out, torch.Tensor):
        return out.detach().to(torch.float64).cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def psnr(test, reference):
    """PSNR in dB of latents (or any arrays without a fixed range), with the reference's value range as
    the peak and one MSE over the whole array.

    Decoded images and videos are scored with ``spectrum_core.app.metrics.psnr`` instead (peak 1, averaged
    over frames): the figure the CLI, the grid and the bench report.
    """
    mse = float(np.mean((test - reference) ** 2))
    peak = float(reference.max() - reference.min())
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


ALL_FAMILIES = FAMILIES


@pytest.fixture
def no_loading(monkeypatch):
    """Any attempt to load a pipeline fails the test: bad input must be refused before a model loads."""
    from spectrum_core.app import runner

    def refuse(*_a, **_k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(runner, "load_pipeline", refuse)
