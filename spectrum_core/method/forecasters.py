"""Feature forecasters: given the block-stack outputs of the real passes so far, predict the next one.

Every forecaster has the same three methods — ``update(tau, feature)`` after a real pass, ``predict(tau)``
on a skipped step, ``reset()`` between runs — and is pure torch with no diffusers import, so it can be
tested on synthetic curves. ``tau`` is the step mapped to [-1, 1) (see ``hooks``); forecasters only assume
it increases.

All arithmetic is float32 whatever the feature dtype (bf16 features lose the fit otherwise); ``predict``
returns float32 and the caller casts. The Chebyshev forecaster *stores* its moments in float16 (with an exact
power-of-two scale per row) when the features are 16-bit, float32 otherwise (see ``ChebyshevForecaster``).

- ``ChebyshevForecaster`` — Spectrum (docs/method.md#the-chebyshev-fit,
  docs/method.md#the-blend-with-linear-extrapolation): ridge regression of the features on Chebyshev
  polynomials T0..TM of tau over *all* real passes of the run, blended with linear extrapolation from the
  last two passes by weight ``blend`` (w=1 is the paper's pure Chebyshev predictor).
- ``LinearForecaster`` — first-order extrapolation from the last two real passes with its horizon capped
  at ``cap`` gaps (k = min(k, cap), 1 by default): after a long gap an uncapped line overshoots.
- ``TaylorForecaster`` — TaylorSeer-style finite-difference extrapolation of order 1 or 2 from the last
  real passes.
- ``ReuseForecaster`` — FORA-style reuse of the last real output.
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch

from .config import FORECASTERS

__all__ = [
    "Forecaster",
    "ChebyshevForecaster",
    "LinearForecaster",
    "TaylorForecaster",
    "ReuseForecaster",
    "FORECASTERS",
    "make_forecaster",
    "forecaster_for",
    "chebyshev_basis",
]


@runtime_checkable
class Forecaster(Protocol):
    """What the hooks need from a forecaster."""

    def update(self, tau: float, feature: torch.Tensor) -> None:
        """Take the block-stack output of a real pass at time ``tau``."""

    def predict(self, tau: float) -> torch.Tensor:
        """The forecast output at ``tau`` (float32, the shape of the features)."""

    def reset(self) -> None:
        """Forget everything; the next run starts afresh."""

    @property
    def num_updates(self) -> int:
        """How many real passes have been taken since the last reset."""


def chebyshev_basis(tau: float, degree: int) -> torch.Tensor:
    """[T0(tau), ..., T_degree(tau)] in float64, by the three-term recurrence."""
    values = [1.0, float(tau)]
    for _ in range(2, degree + 1):
        values.append(2.0 * tau * values[-1] - values[-2])
    return torch.tensor(values[: degree + 1], dtype=torch.float64)


def _f32(feature: torch.Tensor) -> torch.Tensor:
    return feature.detach().to(torch.float32)


class ChebyshevForecaster:
    """Spectrum's global spectral forecaster, with constant-size state.

    The reference keeps every past feature and refits. The ridge solution
    h(τ*) = x(τ*)ᵀ(XᵀX + λI)⁻¹XᵀH only needs the (M+1)² Gram matrix and the (M+1)·F moments XᵀH, where X
    holds the Chebyshev rows of the real passes and H their features — so memory is (M+1)·F float32
    whatever the number of passes, plus the last two features in their own dtype when the blend with
    linear extrapolation is on (w < 1), against K·F in the model dtype for K passes in the reference.

    The moments are kept whitened, B = R⁻ᵀXᵀH with RᵀR = XᵀX + λI (R in float64): the forecast is then
    (R⁻ᵀx*)ᵀB, and float32 rounding of B is not magnified by the conditioning of the Gram matrix, which is
    poor early in a run when all passes sit near τ = -1. Each real pass updates B in place through a
    lower-triangular (M+1)² map, B' = T B + v hᵀ, in one pass over the state: column chunks of B small
    enough to stay in cache go through one small matmul each, so the state is read and written once per
    update (``_fused_update``), and a prediction reads it once (``_fused_combine``).

    Storage: with 16-bit features (bf16, fp16) the moment rows are stored in float16, each with a power-of-two
    scale s_p (B_p = s_p·Q_p, exact) chosen from a bound on the row's magnitude so no element overflows; an
    update upcasts a chunk to float32, computes in float32 and rounds once when it writes back. That is
    (M+1)·2 bytes per feature element instead of (M+1)·4 — at w=0.5, 14 bytes, half the reference's buffer
    of 14 bf16 features — at one float16 rounding (relative 2⁻¹¹) per row per update, which the update does
    not amplify (T is a contraction: L'L'ᵀ = LLᵀ + xxᵀ). float16 rather than bf16 because its 8x finer
    rounding keeps the forecast within 1e-3 relative of the float32-state one on real trajectories
    (``spectrum_core.bench.precision``); the scale takes care of float16's range. float32 (and float64)
    features keep float32 moments, computed exactly as before. ``compact=False`` keeps float32 always.

    Args:
        degree: M, the highest Chebyshev degree (M+1 basis functions). Default 4.
        ridge: λ, the ridge penalty, applied to every coefficient including T0 as in the reference
            (so a constant is predicted ~7% small at M=4; the blend with w<1 recovers part of it). Default
            0.1; 0 is treated as 1e-12 so the system stays solvable before M+1 passes.
        blend: w in h = (1-w)·h_linear + w·h_cheb; 1.0 is the paper, the reference scripts use 0.5.
        linear_cap: cap k = min(k, cap) on the linear term's horizon (in gaps); ``None`` (the reference)
            leaves it uncapped.
        compact: store the moments of 16-bit features in scaled float16 (the default; see Storage above);
            False keeps them in float32 whatever the features.
    """

    def __init__(self, degree: int = 4, ridge: float = 0.1, blend: float = 1.0, linear_cap: float | None = None,
                 compact: bool = True):
        if degree < 0:
            raise ValueError(f"degree must be >= 0, got {degree}")
        if ridge < 0:
            raise ValueError(f"ridge must be >= 0, got {ridge}")
        if not 0.0 <= blend <= 1.0:
            raise ValueError(f"blend must be in [0, 1], got {blend}")
        if linear_cap is not None and not linear_cap >= 0:
            raise ValueError(f"linear_cap must be >= 0, got {linear_cap}")
        self.degree, self.ridge, self.blend, self.linear_cap = degree, ridge, blend, linear_cap
        self.compact = compact
        self.reset()

    def reset(self) -> None:
        size = self.degree + 1
        self._gram = max(self.ridge, 1e-12) * torch.eye(size, dtype=torch.float64)  # XᵀX + λI
        self._chol = torch.linalg.cholesky(self._gram)  # L = Rᵀ, lower triangular
        self._moments: torch.Tensor | None = None  # B = L⁻¹XᵀH / scales, shape (M+1, *feature_shape)
        self._scales = [1.0] * size  # B_p = scales[p]·moments[p]: powers of two (1 for float32 moments)
        self._bounds = [0.0] * size  # max |B_p| is at most bounds[p] (used to pick float16 scales)
        # float16 moments only: B = B̃ + c h_refᵀ, with B̃ stored, c = L⁻¹Xᵀ1 and h_ref the latest feature
        self._ones = torch.zeros(size, dtype=torch.float64)
        self._ref: torch.Tensor | None = None
        self._ref_peak = 0.0
        self._last: list[tuple[float, torch.Tensor]] = []  # the last two (tau, feature), only when blend < 1
        self._count = 0

    @property
    def num_updates(self) -> int:
        return self._count

    def update(self, tau: float, feature: torch.Tensor) -> None:
        x = chebyshev_basis(tau, self.degree)
        h = feature.detach()
        if self._moments is None:
            half = self.compact and feature.dtype in (torch.bfloat16, torch.float16)
            self._moments = torch.zeros((self.degree + 1, *h.shape), dtype=torch.float16 if half else torch.float32,
                                        device=h.device)
        elif self._moments.shape[1:] != h.shape:
            raise ValueError(
                f"feature shape changed within a run: {tuple(self._moments.shape[1:])} -> {tuple(h.shape)}"
            )
        old_chol = self._chol
        self._gram = self._gram + torch.outer(x, x)
        self._chol = torch.linalg.cholesky(self._gram)
        # B' = L'⁻¹(L B + x h) = T B + v h with T = L'⁻¹L lower triangular: update rows bottom-up in place.
        T = torch.linalg.solve_triangular(self._chol, old_chol, upper=False)
        v = torch.linalg.solve_triangular(self._chol, x.unsqueeze(1), upper=False).squeeze(1)
        if self._moments.dtype == torch.float32:
            _fused_update(self._moments, T, v, h)
        else:
            self._scaled_update(T, v, h)
        if self.blend < 1:  # the linear term needs them; w=1 (the paper) keeps no feature at all
            if self._ref is not None and self._ref.shape == feature.shape and self._ref.dtype == feature.dtype:
                latest = self._ref  # the float16 moments' reference is this feature: keep one copy
            else:
                latest = feature.detach().clone()
            self._last = (self._last + [(float(tau), latest)])[-2:]
        self._count += 1

    def _scaled_update(self, T: torch.Tensor, v: torch.Tensor, h: torch.Tensor) -> None:
        """The float16 residual moments' update (see Storage): B̃' = T B̃ + (T c)(h_ref − h)ᵀ, c' = T c + v, with
        new scales from a bound on each new row, in one fused pass."""
        lo, hi = torch.aminmax(h)
        peak = max(abs(float(lo)), abs(float(hi)))  # one reduction over h (and one sync on a GPU)
        ref = self._ref if self._ref is not None else h
        u = T @ self._ones
        rows = len(self._scales)
        spread = peak + self._ref_peak  # |h_ref − h| <= max|h_ref| + max|h|
        bounds = [sum(abs(float(T[i, j])) * self._bounds[j] for j in range(i + 1)) + abs(float(u[i])) * spread
                  for i in range(rows)]
        scales = [_half_scale(b) for b in bounds]
        # Q'_i = (Σ_j T_ij s_j Q_j + u_i (h_ref − h)) / s'_i: the scales fold into the coefficients.
        T_scaled = [[float(T[i, j]) * self._scales[j] / scales[i] for j in range(rows)] for i in range(rows)]
        gains = [float(u[i]) / scales[i] for i in range(rows)]
        _fused_update_half(self._moments, T_scaled, gains, ref, h)
        self._scales, self._bounds = scales, bounds
        self._ones = u + v
        self._ref, self._ref_peak = h.clone(), peak

    def basis_weights(self, tau: float) -> torch.Tensor:
        """w = L⁻¹x(τ): the Chebyshev forecast is Σ_p w_p · B_p (float64, length M+1)."""
        x = chebyshev_basis(tau, self.degree).unsqueeze(1)
        return torch.linalg.solve_triangular(self._chol, x, upper=False).squeeze(1)

    def predict(self, tau: float) -> torch.Tensor:
        if self._count == 0:
            raise RuntimeError("predict() before any update(): the forecaster has no real pass to fit")
        # h = w·Σ_p b_p B_p + (1-w)·(h_i + k·(h_i − h_{i−1})), in one chunked pass over the moment rows and
        # the last two features.
        rows, weights = [], []
        if self.blend > 0:
            b = self.basis_weights(tau)
            rows = [self._moments[p] for p in range(self.degree + 1)]
            weights = [self.blend * w * s for w, s in zip(b.tolist(), self._scales)]
            if self._ref is not None:  # float16 residual moments: B = B̃ + c h_refᵀ
                rows.append(self._ref)
                weights.append(self.blend * float(b @ self._ones))
        linear = None
        if self.blend < 1:
            linear = _linear_terms(self._last, tau, self.linear_cap)
        return _fused_combine(rows, weights, linear, 1.0 - self.blend)

    def state_bytes(self) -> int:
        ref = [self._ref] if self._ref is not None and not any(self._ref is h for _, h in self._last) else []
        tensors = ([self._moments] if self._moments is not None else []) + [h for _, h in self._last] + ref
        return sum(t.numel() * t.element_size() for t in tensors)


def _chunk(t: torch.Tensor) -> int:
    """Columns per chunk of a fused pass: (M+1) float32 rows of a chunk stay in cache (640 KB on a CPU at
    M=4, 20 MB of a GPU's L2), a multiple of every vector width so no element takes another code path."""
    return 1 << 20 if t.device.type == "cuda" else 1 << 15


def _fused_update(B: torch.Tensor, T: torch.Tensor, v: torch.Tensor, h: torch.Tensor) -> None:
    """B ← T B + v hᵀ in place, B of shape (M+1, *F) float32, h of shape F (any dtype), T lower triangular.

    The arithmetic is that of updating whole rows bottom-up — B_i ← T_ii·B_i + Σ_{j<i} T_ij·B_j + v_i·h,
    one rounding per term in that order — done chunk by chunk of columns, so each element is computed
    exactly as before while the state is streamed from memory once (read and written) and h read once."""
    rows = B.shape[0]
    flat = B.view(rows, -1)
    hf = h.reshape(-1)
    coefficients = [[float(T[i, j]) for j in range(i + 1)] for i in range(rows)]
    gains = [float(x) for x in v]
    step = _chunk(B)
    for start in range(0, flat.shape[1], step):
        block = flat[:, start : start + step]
        _rows_bottom_up(block, coefficients, gains, hf[start : start + step].to(torch.float32))


def _rows_bottom_up(block: torch.Tensor, T: list[list[float]], gains: list[float], vec: torch.Tensor) -> None:
    """block ← T block + gains vecᵀ in place for a float32 chunk of rows, T lower triangular (``T[i][j]`` for
    j ≤ i): rows bottom-up, B_i ← T_ii·B_i + Σ_{j<i} T_ij·B_j + gains_i·vec, one rounding per term in that order
    (row i reads rows j < i before they are updated)."""
    for i in reversed(range(block.shape[0])):
        row = block[i]
        row.mul_(T[i][i])
        for j in range(i):
            row.add_(block[j], alpha=T[i][j])
        row.add_(vec, alpha=gains[i])


_HALF_HEADROOM = 2.0**15  # largest stored magnitude a bound allows: float16's finite range ends near 2¹⁶


def _half_scale(bound: float) -> float:
    """The power of two s with bound/s in (2¹⁴, 2¹⁵] (1 for a zero or non-finite bound: then an overflow
    shows as a non-finite forecast, which the hooks never use)."""
    if not (bound > 0 and bound < float("inf")):
        return 1.0
    _, exponent = math.frexp(bound / _HALF_HEADROOM)  # bound/2¹⁵ = m·2^e, m in [0.5, 1)
    return math.ldexp(1.0, exponent)


def _fused_update_half(Q: torch.Tensor, T: list[list[float]], gains: list[float], ref: torch.Tensor,
                       h: torch.Tensor) -> None:
    """Q ← T Q + gains (ref − h)ᵀ for float16 rows: each chunk is upcast to a float32 scratch (in cache),
    updated bottom-up (``_rows_bottom_up``, as ``_fused_update`` does), and rounded to float16 once as it is written back. The
    state is read and written once, ``ref`` and ``h`` read once."""
    rows = Q.shape[0]
    flat = Q.view(rows, -1)
    rf, hf = ref.reshape(-1), h.reshape(-1)
    step = _chunk(Q)
    scratch = torch.empty((rows, min(step, flat.shape[1])), dtype=torch.float32, device=Q.device)
    for start in range(0, flat.shape[1], step):
        block = flat[:, start : start + step]
        work = scratch[:, : block.shape[1]]
        work.copy_(block)
        dc = rf[start : start + step].to(torch.float32).sub_(hf[start : start + step])
        _rows_bottom_up(work, T, gains, dc)
        block.copy_(work)


def _fused_combine(rows: list[torch.Tensor], weights: list[float],
                   linear: tuple[float, torch.Tensor, torch.Tensor | None] | None = None,
                   linear_weight: float = 0.0) -> torch.Tensor:
    """Σ weights[p]·rows[p] (+ linear_weight·(h_i + k·(h_i − h_{i−1})) when ``linear`` = (k, h_i, h_{i−1})
    is given; just h_i when h_{i−1} is None), in float32, chunk by chunk: each row is read once, and each
    element gets the same operations in the same order as whole-tensor arithmetic would give it."""
    out = torch.zeros(rows[0].shape if rows else linear[1].shape, dtype=torch.float32,
                      device=(rows[0] if rows else linear[1]).device)
    flat_out = out.view(-1)
    flat = [r.reshape(-1) for r in rows]
    if linear is not None:
        k, h1, h0 = linear
        h1f, h0f = h1.reshape(-1), (h0.reshape(-1) if h0 is not None else None)
    step = _chunk(out)
    for start in range(0, flat_out.numel(), step):
        stop = start + step
        block = flat_out[start:stop]
        for r, w in zip(flat, weights):
            block.add_(r[start:stop], alpha=w)
        if linear is not None:
            a = _f32(h1f[start:stop])
            lin = a if h0f is None else a + k * (a - _f32(h0f[start:stop]))
            block.add_(lin, alpha=linear_weight)
    return out


def _linear_terms(last: list[tuple[float, torch.Tensor]], tau: float,
                  cap: float | None = None) -> tuple[float, torch.Tensor, torch.Tensor | None]:
    """(k, h_i, h_{i−1}) of ``_linear_extrapolation`` (h_{i−1} None after one pass)."""
    if not last:
        raise RuntimeError("linear extrapolation needs the last features: construct the forecaster with blend < 1")
    (t1, h1) = last[-1]
    if len(last) < 2:
        return 0.0, h1, None
    (t0, h0) = last[-2]
    k = (tau - t1) / (t1 - t0)
    if cap is not None:
        k = min(k, cap)
    return k, h1, h0


def _linear_extrapolation(last: list[tuple[float, torch.Tensor]], tau: float, cap: float | None = None) -> torch.Tensor:
    """h_i + k·(h_i − h_{i−1}) with k = (τ − τ_i)/(τ_i − τ_{i−1}) (at most ``cap`` when given), in float32;
    just h_i after one pass."""
    if not last:
        raise RuntimeError("linear extrapolation needs the last features: construct the forecaster with blend < 1")
    (t1, h1) = last[-1]
    h1 = _f32(h1)
    if len(last) < 2:
        return h1
    (t0, h0) = last[-2]
    k = (tau - t1) / (t1 - t0)
    if cap is not None:
        k = min(k, cap)
    return h1 + k * (h1 - _f32(h0))


class LinearForecaster:
    """Linear extrapolation from the last two real passes, its horizon capped at ``cap`` gaps.

    h = h_i + k·(h_i − h_{i−1}) with k = min((τ − τ_i)/(τ_i − τ_{i−1}), cap). With cap = 1 a forecast never
    reaches further past the last pass than the last gap's change: a step that lands two gaps ahead gets
    the one-gap value, where an uncapped line (TaylorSeer order 1) doubles the step and overshoots when
    features bend. Exact on lines within the cap; after a single pass it is reuse.
    """

    def __init__(self, cap: float = 1.0):
        if not cap >= 0:
            raise ValueError(f"cap must be >= 0, got {cap}")
        self.cap = float(cap)
        self.reset()

    def reset(self) -> None:
        self._last: list[tuple[float, torch.Tensor]] = []
        self._count = 0

    @property
    def num_updates(self) -> int:
        return self._count

    def update(self, tau: float, feature: torch.Tensor) -> None:
        self._last = (self._last + [(float(tau), feature.detach().clone())])[-2:]
        self._count += 1

    def predict(self, tau: float) -> torch.Tensor:
        if not self._last:
            raise RuntimeError("predict() before any update(): the forecaster has no real pass to fit")
        return _linear_extrapolation(self._last, tau, self.cap)

    def state_bytes(self) -> int:
        return sum(h.numel() * h.element_size() for _, h in self._last)


class TaylorForecaster:
    """TaylorSeer's baseline: extrapolate from the last ``order`` + 1 real passes by finite differences.

    Written in Newton's divided-difference form, which equals TaylorSeer's finite-difference Taylor series
    on a uniform grid to first order and stays exact for polynomials of degree <= ``order`` when real passes
    are unevenly spaced, as they are under Spectrum's schedule. With fewer passes than ``order`` + 1 it uses
    the highest order it has.
    """

    def __init__(self, order: int = 1):
        if order not in (1, 2):
            raise ValueError(f"taylor order must be 1 or 2, got {order}")
        self.order = order
        self.reset()

    def reset(self) -> None:
        self._points: list[tuple[float, torch.Tensor]] = []
        self._count = 0

    @property
    def num_updates(self) -> int:
        return self._count

    def update(self, tau: float, feature: torch.Tensor) -> None:
        self._points = (self._points + [(float(tau), _f32(feature))])[-(self.order + 1) :]
        self._count += 1

    def predict(self, tau: float) -> torch.Tensor:
        if not self._points:
            raise RuntimeError("predict() before any update(): the forecaster has no real pass to fit")
        taus = [t for t, _ in self._points][::-1]  # newest first
        table = [h for _, h in self._points][::-1]
        out = table[0].clone()
        product = 1.0
        for j in range(1, len(table)):
            # divided differences of order j, newest first
            table = [(table[i] - table[i + 1]) / (taus[i] - taus[i + j]) for i in range(len(table) - 1)]
            product *= tau - taus[j - 1]
            out.add_(table[0], alpha=product)
        return out

    def state_bytes(self) -> int:
        return sum(h.numel() * h.element_size() for _, h in self._points)


class ReuseForecaster:
    """FORA's baseline: the last real output, unchanged."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._last: torch.Tensor | None = None
        self._count = 0

    @property
    def num_updates(self) -> int:
        return self._count

    def update(self, tau: float, feature: torch.Tensor) -> None:
        self._last = _f32(feature)
        self._count += 1

    def predict(self, tau: float) -> torch.Tensor:
        if self._last is None:
            raise RuntimeError("predict() before any update(): the forecaster has no real pass to reuse")
        return self._last.clone()

    def state_bytes(self) -> int:
        return 0 if self._last is None else self._last.numel() * self._last.element_size()


def make_forecaster(
    name: str,
    *,
    degree: int = 4,
    ridge: float = 0.1,
    blend: float = 1.0,
    taylor_order: int = 1,
    linear_cap: float | None = None,
    compact: bool = True,
):
    """A fresh forecaster by name (one of ``FORECASTERS``). ``linear_cap`` None: 1 for ``"linear"``, no cap
    for the Chebyshev blend."""
    if name == "chebyshev":
        return ChebyshevForecaster(degree=degree, ridge=ridge, blend=blend, linear_cap=linear_cap, compact=compact)
    if name == "linear":
        return LinearForecaster(cap=1.0 if linear_cap is None else linear_cap)
    if name == "taylor":
        return TaylorForecaster(order=taylor_order)
    if name == "reuse":
        return ReuseForecaster()
    raise ValueError(f"Unknown forecaster {name!r}. Choose from: {', '.join(FORECASTERS)}")


def forecaster_for(config) -> Forecaster:
    """A fresh forecaster for a ``SpectrumConfig``."""
    return make_forecaster(
        config.forecaster,
        degree=config.degree,
        ridge=config.ridge,
        blend=config.blend,
        taylor_order=config.taylor_order,
        linear_cap=config.linear_cap,
    )
