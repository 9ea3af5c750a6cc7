"""SpectrumConfig: every knob of the method in one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

FORECASTERS = ("chebyshev", "taylor", "reuse")
"""The forecasters' names (:func:`spectrum_core.method.forecasters.make_forecaster` builds them)."""

__all__ = ["SpectrumConfig"]


@dataclass(frozen=True)
class SpectrumConfig:
    r"""How Spectrum accelerates a pipeline. The CLI's flags map onto these names one to one.

    Args:
        forecaster (`str`, defaults to ``"chebyshev"``):
            ``"chebyshev"`` is Spectrum; ``"taylor"`` (TaylorSeer) and ``"reuse"`` (FORA) are the baselines,
            run under the same schedule and hooks so that comparisons are fair.
        nfe (`int`, optional):
            Target number of real forward passes per run (per CFG branch; summed over experts). The
            schedule's alpha is solved for it from the call's actual step count. Exclusive with ``alpha``.
        alpha (`float`, optional):
            Window growth α: the gap between real passes grows by α after each one. 0.75 gives 14 of 50
            steps (~3.5x), 3.0 gives 10 (~5x). Used when ``nfe`` is not set; defaults to 0.75 then.
        window (`float`, defaults to 2.0):
            N, the initial window: the first gap after warm-up is ``floor(N)`` steps.
        warmup (`int`, defaults to 5):
            W, the number of leading steps always run for real (per expert for Wan2.2).
        degree (`int`, defaults to 4):
            M, the highest Chebyshev degree of the fit (M+1 basis functions).
        ridge (`float`, defaults to 0.1):
            λ, the ridge penalty of the fit. The paper found 0 bad and 0.1 best.
        blend (`float`, defaults to 1.0):
            w, the weight of the Chebyshev forecast against linear extrapolation from the last two real
            passes. 1.0 is the paper's predictor; the reference scripts use 0.5.
        taylor_order (`int`, defaults to 1):
            Order of the ``"taylor"`` forecaster (1 or 2).
        tau_horizon (`int`, optional):
            Steps mapped onto the Chebyshev domain [-1, 1]. ``None`` (default) uses the call's own number of
            steps, so any step count spans the whole domain. ``50`` reproduces the reference, which hard-codes
            50 and so at 28 steps only reaches tau = 0.08.
        force_last (`bool`, defaults to ``False``):
            Run the last step for real (counted in ``nfe``). Off in the paper.
        interval (`int`, optional):
            Replace Spectrum's growing windows by TaylorSeer's uniform schedule: ``warmup`` real steps,
            then one every ``interval`` steps (TaylorSeer's N; 4 and 6 give 14 and 10 of 50 with warmup 3).
            For comparing methods as their papers run them. Exclusive with ``nfe`` and ``alpha``.
    """

    forecaster: str = "chebyshev"
    nfe: int | None = None
    alpha: float | None = None
    window: float = 2.0
    warmup: int = 5
    degree: int = 4
    ridge: float = 0.1
    blend: float = 1.0
    taylor_order: int = 1
    tau_horizon: int | None = None
    force_last: bool = False
    interval: int | None = None

    def __post_init__(self) -> None:
        if self.forecaster not in FORECASTERS:
            raise ValueError(f"Unknown forecaster {self.forecaster!r}. Choose from: {', '.join(FORECASTERS)}")
        if self.nfe is not None and self.alpha is not None:
            raise ValueError("Set either nfe (a target number of real passes) or alpha (window growth), not both")
        if self.nfe is not None and self.nfe < 1:
            raise ValueError(f"nfe must be a positive number of real passes, got {self.nfe}")
        if self.alpha is not None and self.alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.warmup < 1:
            raise ValueError(f"warmup must be >= 1 (a forecast needs a real pass to start from), got {self.warmup}")
        if self.degree < 0:
            raise ValueError(f"degree must be >= 0, got {self.degree}")
        if self.ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {self.ridge}")
        if not 0.0 <= self.blend <= 1.0:
            raise ValueError(f"blend must be between 0 and 1, got {self.blend}")
        if self.taylor_order not in (1, 2):
            raise ValueError(f"taylor_order must be 1 or 2, got {self.taylor_order}")
        if self.interval is not None and (self.nfe is not None or self.alpha is not None):
            raise ValueError("interval selects the uniform schedule; it cannot be combined with nfe or alpha")
        if self.interval is not None and self.interval < 1:
            raise ValueError(f"interval must be >= 1 step, got {self.interval}")
        if self.tau_horizon is not None and self.tau_horizon < 1:
            raise ValueError(f"tau_horizon must be >= 1 steps, got {self.tau_horizon}")

    @property
    def effective_alpha(self) -> float | None:
        """The alpha used when no NFE target is set (0.75 by default); ``None`` in NFE-target mode."""
        if self.nfe is not None or self.interval is not None:
            return None
        return 0.75 if self.alpha is None else float(self.alpha)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "SpectrumConfig":
        """Build from a mapping (a TOML table), rejecting unknown keys with the valid ones named."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Unknown Spectrum setting(s) {', '.join(unknown)}. Valid: {', '.join(sorted(names))}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "SpectrumConfig":
        """A copy with ``changes``; setting ``nfe`` clears ``alpha`` and vice versa."""
        schedule_keys = ("nfe", "alpha", "interval")
        for key in schedule_keys:
            if changes.get(key) is not None:
                for other in schedule_keys:
                    if other != key:
                        changes.setdefault(other, None)
        return dataclasses.replace(self, **changes)
