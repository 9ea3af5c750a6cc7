"""What a Spectrum run reports: per-call statistics, per-step events, and the synchronized clock they use."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["CallStats", "StepEvent", "sync_clock"]


@dataclass(frozen=True)
class StepEvent:
    """One transformer call, as reported to ``SpectrumHandle.subscribe`` listeners."""

    step: int
    num_steps: int
    branch: str
    real: bool
    seconds: float


@dataclass
class CallStats:
    """What one pipeline call did.

    ``real_steps`` are the steps where the network ran (in any branch), ``nfe`` their number — the paper's
    NFE; ``nfe_by_branch`` counts real passes per ``expert/branch``. Seconds are wall-clock with the device
    synchronized: ``transformer_seconds`` inside the transformer calls (split into real and forecast calls),
    ``denoise_seconds`` from the start of the first transformer call to the end of the last, and
    ``call_seconds`` from the start of the first transformer call to the end of the pipeline call (decoding
    included; prompt encoding happens before the hooks see anything, so time a whole call around it). The
    end is seen where the transformer is a diffusers ``CacheMixin`` (FLUX, HunyuanVideo, Wan); elsewhere
    (SD3) ``call_seconds`` equals ``denoise_seconds``.

    ``forecaster_state_bytes`` is the most memory every forecaster of the call (all experts and branches)
    held at once, on ``forecaster_state_device`` (the device of the features it was fed: the head's, or
    ``"cpu"`` with ``forecast_state="cpu"``; ``None`` before the first real pass).
    """

    num_steps: int
    schedule: dict[str, dict[str, Any]]
    real_steps: list[int] = field(default_factory=list)
    forecast_steps: list[int] = field(default_factory=list)
    nfe_by_branch: dict[str, int] = field(default_factory=dict)
    fallbacks: int = 0
    transformer_calls: int = 0
    real_calls: int = 0
    transformer_seconds: float = 0.0
    real_call_seconds: float = 0.0
    forecast_call_seconds: float = 0.0
    denoise_seconds: float = 0.0
    call_seconds: float = 0.0
    forecaster_state_bytes: int = 0
    forecaster_state_device: str | None = None

    @property
    def nfe(self) -> int:
        return len(self.real_steps)

    @property
    def forecast_calls(self) -> int:
        return self.transformer_calls - self.real_calls

    @property
    def estimated_full_seconds(self) -> float:
        """Denoising time had every call been real: the mean real call times the number of calls."""
        if not self.real_calls:
            return self.denoise_seconds
        mean_real = self.real_call_seconds / self.real_calls
        return self.denoise_seconds - self.transformer_seconds + mean_real * self.transformer_calls

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_steps": self.num_steps,
            "nfe": self.nfe,
            "real_steps": list(self.real_steps),
            "forecast_steps": list(self.forecast_steps),
            "nfe_by_branch": dict(self.nfe_by_branch),
            "fallbacks": self.fallbacks,
            "transformer_calls": self.transformer_calls,
            "real_calls": self.real_calls,
            "transformer_seconds": self.transformer_seconds,
            "real_call_seconds": self.real_call_seconds,
            "forecast_call_seconds": self.forecast_call_seconds,
            "denoise_seconds": self.denoise_seconds,
            "call_seconds": self.call_seconds,
            "forecaster_state_bytes": self.forecaster_state_bytes,
            "forecaster_state_device": self.forecaster_state_device,
            "schedule": self.schedule,
        }



def sync_clock() -> float:
    """Wall-clock seconds after waiting for queued device work, so a timer covers the kernels it launched."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        torch.mps.synchronize()
    return time.perf_counter()


