"""Shared fixtures: tiny pipelines of every family, built once per test session into a temp cache."""

import numpy as np
import pytest
import torch

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
    """One pipeline call at ``steps`` with a fixed seed; the output as a float64 numpy array.

    Latents by default: the hooks act on the transformer, and skipping the VAE keeps the suite fast.
    """
    kwargs = {**TINY_CALL_KWARGS[family], **overrides}
    result = pipe(
        prompt,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(seed),
        output_type=output_type,
        **kwargs,
    )
    out = result.frames if hasattr(result, "frames") else result.images
    if isinstance(out, torch.Tensor):
        return out.detach().to(torch.float64).cpu().numpy()
    return np.asarray(out, dtype=np.float64)


def psnr(test, reference):
    """PSNR in dB with the reference's value range as the peak."""
    mse = float(np.mean((test - reference) ** 2))
    peak = float(reference.max() - reference.min())
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


ALL_FAMILIES = FAMILIES
