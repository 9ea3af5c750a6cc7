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


def test_ssim_matches_closed_form_on_flat_images():
    # Flat images have no variance, so SSIM reduces to its luminance term (2ab + C1) / (a² + b² + C1),
    # with C1 = (0.01 · data range)².
    a, b, c1 = 0.5, 0.6, 0.01**2
    value = metrics.ssim(np.full((16, 16, 3), b), np.full((16, 16, 3), a))
    assert value == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-6)


def test_video_ssim_is_the_mean_over_frames():
    rng = np.random.default_rng(3)
    target = rng.random((3, 20, 20, 3))
    pred = np.clip(target + rng.normal(0, [[[[0.02]]], [[[0.1]]], [[[0.3]]]], target.shape), 0, 1)
    frames = [metrics.ssim(pred[i], target[i]) for i in range(3)]
    assert frames[0] > frames[1] > frames[2]
    assert metrics.ssim(pred, target) == pytest.approx(float(np.mean(frames)), abs=1e-6)


def test_ssim_works_below_its_window_size():
    img = np.random.default_rng(4).random((6, 6, 3))  # smaller than the 11-pixel Gaussian window
    assert metrics.ssim(img, img) == pytest.approx(1.0, abs=1e-6)
    assert metrics.ssim(1 - img, img) < 0.5


def test_pil_and_uint8_inputs_agree_with_floats():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    f = metrics.fidelity(Image.fromarray(a), Image.fromarray(b))
    assert f.psnr == pytest.approx(metrics.psnr(a / 255.0, b / 255.0), rel=1e-5)
    assert f.ssim == pytest.approx(metrics.ssim(a / 255.0, b / 255.0), abs=1e-6)
    assert -1.0 <= f.ssim < 0.5  # independent noise is barely similar


def test_ssim_drops_with_noise():
    rng = np.random.default_rng(2)
    img = rng.random((64, 64, 3))
    slightly = np.clip(img + rng.normal(0, 0.02, img.shape), 0, 1)
    very = np.clip(img + rng.normal(0, 0.3, img.shape), 0, 1)
    assert metrics.ssim(slightly, img) > metrics.ssim(very, img)


@pytest.mark.skipif(metrics._lpips_metric() is None, reason="LPIPS' AlexNet weights are not on this machine")
def test_lpips_is_zero_for_identical_images_and_grows_with_noise():
    rng = np.random.default_rng(5)
    img = rng.random((64, 64, 3))
    noisy = np.clip(img + rng.normal(0, 0.2, img.shape), 0, 1)
    assert metrics.lpips(img, img) == pytest.approx(0.0, abs=1e-4)
    assert metrics.lpips(noisy, img) > 0.01
    assert metrics.lpips(img[:16, :16], img[:16, :16]) is None  # below AlexNet's smallest input


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="different shapes"):
        metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 16, 3)))
