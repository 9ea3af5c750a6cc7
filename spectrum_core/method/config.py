"""SpectrumConfig: every knob of the method in one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

FORECASTERS = ("chebyshev", "taylor", "reuse")
"""The forecasters' names (:func:`spectrum_core.method.forecasters.make_forecaster` builds them)."""

__all__ = ["SpectrumConfig", "ConfigError"]

_SCHEDULE_KEYS = ("nfe", "alpha", "interval")


class ConfigError(ValueError):
    """A Spectrum setting out of its range or of the wrong type.

    ``field`` is the :class:`SpectrumConfig` field name, ``value`` what was given and ``expected`` what is
    accepted ("a finite number >= 0"). The message uses the field name, never a CLI flag, so every front
    end can word the remedy its own way.
    """

    def __init__(self, field: str, value: Any, expected: str, message: str | None = None):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(message or f"{field} must be {expected}, got {value!r}")


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_number(field: str, value: Any, lo: float, hi: float | None = None, *, optional: bool = False) -> None:
    """A finite real number in [lo, hi] (bools, NaN and infinities refused)."""
    if value is None and optional:
        return
    expected = f"a finite number >= {lo:g}" if hi is None else f"a finite number from {lo:g} to {hi:g}"
    if not _is_real(value) or not math.isfinite(float(value)) or value < lo or (hi is not None and value > hi):
        raise ConfigError(field, value, expected)


def _check_int(field: str, value: Any, lo: int, *, optional: bool = False, what: str | None = None) -> None:
    """A whole number >= lo (bools and floats refused: a count is an int)."""
    if value is None and optional:
        return
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < lo:
        raise ConfigError(field, value, what or f"a whole number >= {lo}")


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
        if not isinstance(self.forecaster, str) or self.forecaster not in FORECASTERS:
            raise ConfigError(
                "forecaster", self.forecaster, f"one of {', '.join(FORECASTERS)}",
                f"Unknown forecaster {self.forecaster!r}. Choose from: {', '.join(FORECASTERS)}",
            )
        _check_int("nfe", self.nfe, 1, optional=True, what="a whole number of real passes >= 1")
        _check_number("alpha", self.alpha, 0.0, optional=True)
        _check_number("window", self.window, 1.0)
        _check_int("warmup", self.warmup, 1, what="a whole number of steps >= 1 (a forecast needs a real pass to start from)")
        _check_int("degree", self.degree, 0)
        _check_number("ridge", self.ridge, 0.0)
        _check_number("blend", self.blend, 0.0, 1.0)
        if isinstance(self.taylor_order, bool) or self.taylor_order not in (1, 2):
            raise ConfigError("taylor_order", self.taylor_order, "1 or 2")
        _check_int("tau_horizon", self.tau_horizon, 1, optional=True, what="a whole number of steps >= 1")
        if not isinstance(self.force_last, bool):
            raise ConfigError("force_last", self.force_last, "true or false")
        _check_int("interval", self.interval, 1, optional=True, what="a whole number of steps >= 1")
        chosen = [k for k in _SCHEDULE_KEYS if getattr(self, k) is not None]
        if len(chosen) > 1:
            what = {"nfe": "nfe (a target number of real passes)", "alpha": "alpha (window growth)",
                    "interval": "interval (the uniform schedule)"}
            raise ConfigError(
                chosen[1], getattr(self, chosen[1]), f"unset when {chosen[0]} is set",
                f"Set either {' or '.join(what[k] for k in chosen)}, not both",
            )

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
            raise ConfigError(
                unknown[0], values[unknown[0]], f"one of {', '.join(sorted(names))}",
                f"Unknown Spectrum setting(s) {', '.join(unknown)}. Valid: {', '.join(sorted(names))}",
            )
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "SpectrumConfig":
        """A copy with ``changes``; a given one of ``nfe``/``alpha``/``interval`` clears the other two."""
        for key in _SCHEDULE_KEYS:
            if changes.get(key) is not None:
                for other in _SCHEDULE_KEYS:
                    if other != key:
                        changes.setdefault(other, None)
        return dataclasses.replace(self, **changes)
