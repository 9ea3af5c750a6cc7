"""Fidelity metrics on images and videos, against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from spectrum_core.app import metrics


def test_identical_outputs():
    img = np.random.default_rng(0).random((32, 32, 3))
    assert math.isinf(metrics.psnr(img, img))
    assert metrics.ssim(img, img) == pytest.approx(1.0, abs=1e-6)


def test_psnr_matches_closed_form():
    a = np.full((16, 16, 3), 0.5)
    b = a + 0.1  # MSE 0.01 -> 20 dB
    assert metrics.psnr(b, a) == pytest.approx(20.0, abs=1e-3)


def test_video_psnr_is_the_mean_over_frames():
    target = np.full((2, 16, 16, 3), 0.5)
    pred = target.copy()
    pred[0] += 0.1   # 20 dB
    pred[1] += 0.01  # 40 dB
    assert metrics.psnr(pred, target) == pytest.approx(30.0, abs=1e-3)


def test_pil_and_uint8_inputs_agree_with_floats():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    f = metrics.fidelity(Image.fromarray(a), Image.fromarray(b))
    assert f.psnr == pytest.approx(metrics.psnr(a / 255.0, b / 255.0), rel=1e-5)
    assert -1.0 <= f.ssim < 0.5  # independent noise is barely similar
    assert f.lpips is None or f.lpips >= 0


def test_ssim_drops_with_noise():
    rng = np.random.default_rng(2)
    img = rng.random((64, 64, 3))
    slightly = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    very = np.clip(img + rng.normal(0, 0.3, img.shape), 0, 1)
    assert metrics.ssim(slightly, img) > metrics.ssim(very, img)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="different shapes"):
        metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 16, 3)))
