"""SpectrumConfig: every knob of the method in one frozen, validated dataclass."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, Mapping

FORECASTERS = ("chebyshev", "linear", "taylor", "reuse")
# The highest Chebyshev degree accepted: the state holds degree+1 feature-sized rows (the paper uses 4).
MAX_DEGREE = 16
"""The forecasters' names (:func:`spectrum_core.method.forecasters.make_forecaster` builds them)."""

__all__ = ["SpectrumConfig", "ConfigError", "MAX_DEGREE"]

_SCHEDULE_KEYS = ("nfe", "alpha", "interval", "real_steps")


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


def _normalise_real_steps(value: Any) -> tuple[tuple[int, ...], ...]:
    """Tuples of ints, one per segment, each sorted, unique, from 0; a flat list of ints is one segment."""
    expected = "sorted unique whole steps >= 0 starting at 0, one list per expert segment"
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ConfigError("real_steps", value, expected)
    segments = [value] if all(isinstance(v, numbers.Integral) for v in value) else list(value)
    out = []
    for i, segment in enumerate(segments):
        if isinstance(segment, (str, bytes)) or not isinstance(segment, (list, tuple)) or not segment:
            raise ConfigError("real_steps", value, expected, f"real_steps segment {i} must be a non-empty list of steps, got {segment!r}")
        if any(not isinstance(v, numbers.Integral) or isinstance(v, bool) for v in segment):
            raise ConfigError("real_steps", value, expected, f"real_steps segment {i} must hold whole step numbers, got {list(segment)!r}")
        steps = tuple(int(v) for v in segment)
        if steps[0] != 0:
            raise ConfigError("real_steps", value, expected, f"real_steps segment {i} must start with step 0 (a forecast needs a real pass to start from), got {list(steps)}")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            raise ConfigError("real_steps", value, expected, f"real_steps segment {i} must be sorted with no repeats, got {list(steps)}")
        out.append(steps)
    return tuple(out)


def _check_int(field: str, value: Any, lo: int, hi: int | None = None, *, optional: bool = False,
               what: str | None = None) -> None:
    """A whole number in [lo, hi] (bools and floats refused: a count is an int)."""
    if value is None and optional:
        return
    if (not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < lo
            or (hi is not None and value > hi)):
        raise ConfigError(field, value, what or (f"a whole number >= {lo}" if hi is None else f"a whole number from {lo} to {hi}"))


@dataclass(frozen=True)
class SpectrumConfig:
    r"""How Spectrum accelerates a pipeline. The CLI's flags map onto these names one to one.

    Args:
        forecaster (`str`, defaults to ``"chebyshev"``):
            ``"chebyshev"`` is Spectrum; ``"linear"`` is extrapolation from the last two real passes with its
            horizon capped (``linear_cap``); ``"taylor"`` (TaylorSeer) and ``"reuse"`` (FORA) are the
            baselines, run under the same schedule and hooks so that comparisons are fair.
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
            M, the highest Chebyshev degree of the fit (M+1 basis functions), at most ``MAX_DEGREE`` (16): the
            forecaster keeps M+1 feature-sized rows, and the paper found 4 best.
        ridge (`float`, defaults to 0.1):
            λ, the ridge penalty of the fit. The paper found 0 bad and 0.1 best.
        blend (`float`, defaults to 0.5):
            w, the weight of the Chebyshev forecast against linear extrapolation from the last two real
            passes. 0.5 is what the reference scripts and every preset use (measured better on both
            embedded models); 1.0 is the paper's pure Chebyshev predictor.
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
            For comparing methods as their papers run them. Exclusive with ``nfe``, ``alpha`` and
            ``real_steps``.
        real_steps (`tuple[tuple[int, ...], ...]`, optional):
            An explicit schedule: the 0-based steps that run the network, one sorted tuple per expert segment
            (one segment for every model but Wan2.2, whose two experts each count from their own first step).
            A flat list of ints means one segment. Each segment's first step (0) must be real; the steps must
            be sorted and unique and, when the run starts, lie inside their segment. ``warmup``, ``window``
            and ``force_last`` do not apply. With ``nfe`` set too, the total must equal it (the budget the
            list was made for); exclusive with ``alpha`` and ``interval``. Calibration profiles
            (``spectrum calibrate``) fill this in.
        linear_cap (`float`, optional):
            Cap the horizon of linear extrapolation at this many gaps: k = min(k, cap) in
            h_i + k·(h_i − h_{i−1}). An uncapped extrapolation overshoots after a long gap. ``None`` means 1.0
            for the ``"linear"`` forecaster and no cap for the Chebyshev blend's linear term (the reference).
    """

    forecaster: str = "chebyshev"
    nfe: int | None = None
    alpha: float | None = None
    window: float = 2.0
    warmup: int = 5
    degree: int = 4
    ridge: float = 0.1
    blend: float = 0.5
    taylor_order: int = 1
    tau_horizon: int | None = None
    force_last: bool = False
    interval: int | None = None
    real_steps: tuple[tuple[int, ...], ...] | None = None
    linear_cap: float | None = None

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
        _check_int("degree", self.degree, 0, MAX_DEGREE)
        _check_number("ridge", self.ridge, 0.0)
        _check_number("blend", self.blend, 0.0, 1.0)
        if isinstance(self.taylor_order, bool) or self.taylor_order not in (1, 2):
            raise ConfigError("taylor_order", self.taylor_order, "1 or 2")
        _check_int("tau_horizon", self.tau_horizon, 1, optional=True, what="a whole number of steps >= 1")
        if not isinstance(self.force_last, bool):
            raise ConfigError("force_last", self.force_last, "true or false")
        _check_int("interval", self.interval, 1, optional=True, what="a whole number of steps >= 1")
        _check_number("linear_cap", self.linear_cap, 0.0, optional=True)
        if self.real_steps is not None:
            object.__setattr__(self, "real_steps", _normalise_real_steps(self.real_steps))
            total = sum(len(segment) for segment in self.real_steps)
            if self.nfe is not None and self.nfe != total:
                raise ConfigError(
                    "real_steps", self.real_steps, f"{self.nfe} steps in all (nfe)",
                    f"real_steps lists {total} real steps but nfe is {self.nfe}: they must agree",
                )
        chosen = [k for k in ("alpha", "interval", "real_steps") if getattr(self, k) is not None]
        if self.nfe is not None and self.real_steps is None:
            chosen.insert(0, "nfe")
        if len(chosen) > 1:
            what = {"nfe": "nfe (a target number of real passes)", "alpha": "alpha (window growth)",
                    "interval": "interval (the uniform schedule)", "real_steps": "real_steps (an explicit list)"}
            raise ConfigError(
                chosen[1], getattr(self, chosen[1]), f"unset when {chosen[0]} is set",
                f"Set either {' or '.join(what[k] for k in chosen)}, not both",
            )

    @property
    def effective_alpha(self) -> float | None:
        """The alpha used when no NFE target is set (0.75 by default); ``None`` in NFE-target mode."""
        if self.nfe is not None or self.interval is not None or self.real_steps is not None:
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
        out = dataclasses.asdict(self)
        if self.real_steps is not None:
            out["real_steps"] = [list(segment) for segment in self.real_steps]
        return out

    def replace(self, **changes: Any) -> "SpectrumConfig":
        """A copy with ``changes``; a given one of ``nfe``/``alpha``/``interval``/``real_steps`` clears the
        others (``real_steps`` and ``nfe`` may be given together: the list and its budget)."""
        for key in _SCHEDULE_KEYS:
            if changes.get(key) is not None:
                for other in _SCHEDULE_KEYS:
                    if other != key:
                        changes.setdefault(other, None)
        return dataclasses.replace(self, **changes)
