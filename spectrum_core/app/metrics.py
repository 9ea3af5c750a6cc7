"""Fidelity of an accelerated output to its full-step baseline: PSNR and SSIM (torchmetrics), and
LPIPS when torchmetrics can build it from weights already on this machine (it never downloads).

Images may be PIL images or (H, W, 3) arrays; videos are (F, H, W, 3) arrays, compared frame by frame
and averaged, as the paper's video tables do. Arrays are uint8 or floats in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Fidelity:
    psnr: float            # dB; inf when identical
    ssim: float            # 1.0 when identical
    lpips: float | None    # None when LPIPS weights are not available locally


def to_tensor(media: Any) -> torch.Tensor:
    """PIL image, (H, W, 3) or (F, H, W, 3) array -> float (N, 3, H, W) in [0, 1]."""
    arr = np.asarray(media.convert("RGB") if hasattr(media, "convert") else media)
    t = torch.from_numpy(np.array(arr))  # a writable copy (PIL arrays are read-only)
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float().clamp(0, 1)
    if t.ndim == 3:
        t = t[None]
    if t.ndim != 4 or t.shape[-1] != 3:
        raise ValueError(f"expected an RGB image or video of shape (..., H, W, 3), got {tuple(arr.shape)}")
    return t.permute(0, 3, 1, 2).contiguous()


def psnr(pred: Any, target: Any) -> float:
    """Mean PSNR over frames in dB, data range 1.0; inf for identical inputs."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = _pair(pred, target)
    # Per frame, then averaged (torchmetrics would otherwise pool the MSE over the whole video).
    values = [float(peak_signal_noise_ratio(p[i:i + 1], t[i:i + 1], data_range=1.0)) for i in range(len(p))]
    return float(np.mean(values))


def ssim(pred: Any, target: Any) -> float:
    """Mean SSIM over frames (Gaussian window 11, clipped to the image size for tiny outputs)."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = _pair(pred, target)
    side = min(p.shape[-2:])
    kernel = min(11, side if side % 2 else side - 1)
    return float(structural_similarity_index_measure(p, t, data_range=1.0, kernel_size=kernel,
                                                     sigma=1.5 * kernel / 11, reduction="elementwise_mean"))


def lpips(pred: Any, target: Any) -> float | None:
    """Mean LPIPS (AlexNet) over frames, or None when its weights are not on this machine."""
    metric = _lpips_metric()
    if metric is None:
        return None
    p, t = _pair(pred, target)
    if min(p.shape[-2:]) < 32:  # AlexNet's pooling needs at least ~32 px
        return None
    with torch.no_grad():
        return float(metric(p * 2 - 1, t * 2 - 1))


def fidelity(pred: Any, target: Any) -> Fidelity:
    """PSNR, SSIM and (if available) LPIPS of `pred` against `target`."""
    return Fidelity(psnr=psnr(pred, target), ssim=ssim(pred, target), lpips=lpips(pred, target))


def _pair(pred: Any, target: Any) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = to_tensor(pred), to_tensor(target)
    if p.shape != t.shape:
        raise ValueError(f"cannot compare outputs of different shapes {tuple(p.shape)} and {tuple(t.shape)}")
    return p, t


@lru_cache(maxsize=1)
def _lpips_metric() -> Any | None:
    """torchmetrics' LPIPS if torchvision and the AlexNet weights are already cached locally."""
    try:
        import torchvision  # noqa: F401  (LPIPS' backbone)
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    except ImportError:
        return None
    from pathlib import Path

    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(checkpoints.glob("alexnet-*.pth")):
        return None  # building it would try to download the backbone
    try:
        return LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="mean").eval()
    except Exception:  # any failure to build just means "not available"
        return None
