"""Forecasters on sequences with exact answers (no diffusers involved)."""

import math

import pytest
import torch

from spectrum_core.method.forecasters import (
    ChebyshevForecaster,
    Forecaster,
    ReuseForecaster,
    TaylorForecaster,
    make_forecaster,
)

STEPS_14 = [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25, 31, 38, 46]


def tau(step, horizon=50):
    return 2.0 * step / horizon - 1.0


def poly_features(degree, shape=(3, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(degree + 1, *shape, generator=g, dtype=torch.float64)
    return lambda t: sum(c * t**p for p, c in enumerate(coeffs))


def weights(forecaster, steps, target):
    """The forecaster's prediction as linear weights on the real passes (one-hot features)."""
    for i, s in enumerate(steps):
        forecaster.update(tau(s), torch.eye(len(steps), dtype=torch.float64)[i])
    return forecaster.predict(tau(target)).double()


@pytest.mark.parametrize("name", ["chebyshev", "linear", "taylor", "reuse"])
def test_every_forecaster_implements_the_protocol(name):
    f = make_forecaster(name)
    assert isinstance(f, Forecaster)
    with pytest.raises(RuntimeError, match="before any update"):
        f.predict(0.0)
    f.update(-1.0, torch.ones(4))
    assert f.num_updates == 1
    f.reset()
    assert f.num_updates == 0


def test_unknown_forecaster_names_the_valid_ones():
    with pytest.raises(ValueError, match="chebyshev, linear, taylor, reuse"):
        make_forecaster("magic")


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_chebyshev_is_exact_on_polynomials_up_to_its_degree(degree):
    # lambda -> 0; forecasts at every skipped step of the 14-of-50 schedule, from the first (where all
    # passes sit near tau = -1 and the Gram matrix is badly conditioned) to the last.
    curve = poly_features(degree, seed=degree)
    for seen, targets in ((6, (7,)), (7, (9, 10)), (8, (12, 14)), (10, (21, 24)), (12, (32, 37)), (14, (47, 49))):
        f = ChebyshevForecaster(degree=4, ridge=1e-12, blend=1.0)
        for s in STEPS_14[:seen]:
            f.update(tau(s), curve(tau(s)))
        for target in targets:
            expected = curve(tau(target)).float()
            torch.testing.assert_close(f.predict(tau(target)), expected, rtol=1e-4, atol=1e-4)


def reference_forecast(history, target, degree=4, ridge=0.1, blend=1.0):
    """The reference's way, in float64: keep every feature, solve the ridge system, blend."""
    taus = torch.tensor([t for t, _ in history], dtype=torch.float64)
    X = torch.stack([torch.special.chebyshev_polynomial_t(taus, m) for m in range(degree + 1)], dim=1)
    H = torch.stack([h.double().flatten() for _, h in history])
    C = torch.linalg.solve(X.T @ X + ridge * torch.eye(degree + 1, dtype=torch.float64), X.T @ H)
    x = torch.special.chebyshev_polynomial_t(torch.tensor([target], dtype=torch.float64), torch.arange(degree + 1))
    cheb = (x @ C).reshape(history[0][1].shape)
    (t1, h1), (t0, h0) = history[-1], history[-2] if len(history) > 1 else history[-1]
    k = 0.0 if t1 == t0 else (target - t1) / (t1 - t0)
    linear = h1.double() + k * (h1.double() - h0.double())
    return blend * cheb + (1 - blend) * linear


@pytest.mark.parametrize("blend", [1.0, 0.5])
@pytest.mark.parametrize("dtype, compact, tolerance", [
    (torch.float32, True, 1e-5),    # float32 features: float32 moments whatever ``compact``
    (torch.bfloat16, False, 1e-5),  # float32 moments of bf16 features
    (torch.bfloat16, True, 1e-3),   # float16 residual moments: one 2^-11 rounding per row and update
])
def test_chebyshev_equals_the_full_history_reference_at_every_skipped_step(blend, dtype, compact, tolerance):
    g = torch.Generator().manual_seed(11)
    base, drift, wiggle = (torch.randn(4, 32, generator=g) for _ in range(3))
    feature = lambda s: (base + drift * tau(s) + wiggle * math.sin(3 * tau(s))).to(dtype)  # noqa: E731
    f = ChebyshevForecaster(degree=4, ridge=0.1, blend=blend, compact=compact)
    history = []
    for step in range(50):
        if step in STEPS_14:
            f.update(tau(step), feature(step))
            history.append((tau(step), feature(step)))
            continue
        expected = reference_forecast(history, tau(step), blend=blend)
        got = f.predict(tau(step)).double()
        assert (got - expected).norm() / expected.norm() < tolerance, step


def test_chebyshev_is_not_exact_beyond_its_degree():
    curve = poly_features(6, seed=3)
    f = ChebyshevForecaster(degree=2, ridge=1e-12)
    for s in STEPS_14[:10]:
        f.update(tau(s), curve(tau(s)))
    assert (f.predict(tau(40)) - curve(tau(40)).float()).abs().max() > 1e-2


def test_chebyshev_matches_reference_weights():
    # docs/method.md#prediction-as-linear-weights: float64 reference, M=4, lambda=0.1, tau = step/25 - 1.
    a = weights(ChebyshevForecaster(4, 0.1, 1.0), [0, 1, 2, 3, 4], 5)
    torch.testing.assert_close(a, torch.tensor([-0.2677, -0.0275, 0.2006, 0.4158, 0.6174], dtype=torch.float64), atol=1e-4, rtol=0)
    a = weights(ChebyshevForecaster(4, 0.1, 0.5), [0, 1, 2, 3, 4], 5)
    torch.testing.assert_close(a, torch.tensor([-0.1338, -0.0138, 0.1003, -0.2921, 1.3087], dtype=torch.float64), atol=1e-4, rtol=0)
    a = weights(ChebyshevForecaster(4, 0.1, 1.0), [0, 1, 2, 3, 4, 6], 7)
    torch.testing.assert_close(
        a, torch.tensor([-0.1366, -0.0789, 0.0180, 0.1474, 0.3031, 0.6702], dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_ridge_shrinks_constants_as_the_reference_does():
    # The intercept is penalised too, so a constant comes back ~7% small at M=4, lambda=0.1
    # (docs/method.md#prediction-as-linear-weights).
    f = ChebyshevForecaster(4, 0.1, 1.0)
    for s in STEPS_14:
        f.update(tau(s), torch.ones(3))
    value = f.predict(tau(47))[0].item()
    assert 0.85 < value < 0.99


def test_blend_zero_is_linear_extrapolation_from_the_last_two_passes():
    f = ChebyshevForecaster(4, 0.1, blend=0.0)
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(6, generator=g) for _ in STEPS_14[:8]]
    for s, h in zip(STEPS_14[:8], feats):
        f.update(tau(s), h)
    k = (tau(13) - tau(11)) / (tau(11) - tau(8))  # the last two real passes are steps 8 and 11
    torch.testing.assert_close(f.predict(tau(13)), feats[-1] + k * (feats[-1] - feats[-2]))


@pytest.mark.parametrize("blend, dtype, compact, bytes_per_element", [
    (1.0, torch.float32, True, 5 * 4),            # (M+1) float32 moments, nothing else
    (0.5, torch.float32, True, 5 * 4 + 2 * 4),    # + the last two features in their own dtype
    (1.0, torch.bfloat16, False, 5 * 4),
    (0.5, torch.bfloat16, False, 5 * 4 + 2 * 2),
    (1.0, torch.bfloat16, True, 5 * 2 + 2),       # float16 moments + their reference (the latest feature)
    (0.5, torch.bfloat16, True, 5 * 2 + 2 * 2),   # the reference is the linear term's latest: one copy
])
def test_chebyshev_state_does_not_grow_with_passes(blend, dtype, compact, bytes_per_element):
    f = ChebyshevForecaster(degree=4, blend=blend, compact=compact)
    shape = (2, 16, 8)
    sizes = []
    for s in STEPS_14 + list(range(47, 50)):
        f.update(tau(s), torch.randn(shape).to(dtype))
        sizes.append(f.state_bytes())
    assert sizes[1:] == [sizes[1]] * (len(sizes) - 1)
    assert sizes[-1] == bytes_per_element * 2 * 16 * 8
    # the reference keeps every real feature in the model dtype: 14 of them at 14 passes
    assert sizes[-1] < 14 * torch.tensor([], dtype=dtype).element_size() * 2 * 16 * 8
    if compact:  # issue 17's bound: at most half the reference's buffer at 14 passes
        assert sizes[-1] <= 0.5 * 14 * torch.tensor([], dtype=dtype).element_size() * 2 * 16 * 8


def test_chebyshev_fits_in_float32_under_bf16_features():
    curve = poly_features(3, shape=(4, 8), seed=5)
    f16, f32 = ChebyshevForecaster(4, 1e-6, compact=False), ChebyshevForecaster(4, 1e-6)
    for s in STEPS_14[:9]:
        h = curve(tau(s)).to(torch.bfloat16)
        f16.update(tau(s), h)
        f32.update(tau(s), h.float())
    out = f16.predict(tau(22))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, f32.predict(tau(22)), rtol=0, atol=0)
    assert f16._moments.dtype == torch.float32


@pytest.mark.parametrize("blend, tolerance", [(0.5, 1e-3), (1.0, 2e-3)])
def test_compact_moments_stay_close_to_float32(blend, tolerance):
    # Same bf16 inputs, the reference's ridge: the float16 residual state stays within 1e-3 relative of
    # the float32 one at every skipped step of the 14-of-50 schedule with w=0.5, 2e-3 with w=1 (the pure
    # fit has no exact linear term to dilute its rounding; bench.precision measures the same on real runs).
    curve = poly_features(6, shape=(4, 64), seed=5)
    half, full = ChebyshevForecaster(4, 0.1, blend), ChebyshevForecaster(4, 0.1, blend, compact=False)
    for step in range(50):
        if step in STEPS_14:
            h = (100.0 * curve(tau(step))).to(torch.bfloat16)  # magnitudes far from 1: the scales matter
            half.update(tau(step), h)
            full.update(tau(step), h)
            continue
        ref = full.predict(tau(step))
        assert (half.predict(tau(step)) - ref).norm() / ref.norm() < tolerance, step
    assert half._moments.dtype == torch.float16 and full._moments.dtype == torch.float32


def test_compact_moments_are_exact_on_polynomials_up_to_bf16_rounding():
    curve = poly_features(4, shape=(4, 64), seed=6)
    f = ChebyshevForecaster(4, 1e-12, 1.0)
    for s in STEPS_14:
        f.update(tau(s), curve(tau(s)).to(torch.bfloat16))
    for target in (47, 49):
        exact = curve(tau(target)).float()
        assert (f.predict(tau(target)) - exact).norm() / exact.norm() < 1e-2


def test_compact_moments_do_not_overflow_float16():
    # features near bf16's range limit: float16 alone would overflow at 65504; the power-of-two scales do not.
    f = ChebyshevForecaster(4, 0.1, 1.0)
    for s in STEPS_14:
        f.update(tau(s), torch.full((8,), 1e30 * (1 + tau(s)), dtype=torch.bfloat16))
    out = f.predict(tau(47))
    assert torch.isfinite(out).all() and out.min() > 1e29


def test_chebyshev_survives_ridge_zero_with_too_few_passes():
    f = ChebyshevForecaster(degree=4, ridge=0.0)
    f.update(tau(0), torch.ones(3))
    f.update(tau(1), torch.ones(3) * 2)
    assert torch.isfinite(f.predict(tau(2))).all()


@pytest.mark.parametrize("steps", [[0, 1, 2, 3], [0, 3, 4, 9]])
def test_taylor_order_1_is_exact_on_lines(steps):
    line = poly_features(1, seed=7)
    f = TaylorForecaster(order=1)
    for s in steps:
        f.update(tau(s), line(tau(s)))
    torch.testing.assert_close(f.predict(tau(14)), line(tau(14)).float(), rtol=1e-5, atol=1e-5)


def test_taylor_order_2_is_exact_on_quadratics_with_uneven_gaps():
    quad = poly_features(2, seed=8)
    f = TaylorForecaster(order=2)
    for s in [0, 4, 6, 11, 15]:
        f.update(tau(s), quad(tau(s)))
    torch.testing.assert_close(f.predict(tau(19)), quad(tau(19)).float(), rtol=1e-4, atol=1e-4)
    f1 = TaylorForecaster(order=1)
    for s in [0, 4, 6, 11, 15]:
        f1.update(tau(s), quad(tau(s)))
    assert (f1.predict(tau(19)) - quad(tau(19)).float()).abs().max() > 1e-3


def test_taylor_keeps_only_order_plus_one_features():
    f = TaylorForecaster(order=2)
    for s in STEPS_14:
        f.update(tau(s), torch.randn(10))
    assert f.state_bytes() == 3 * 10 * 4


def test_reuse_returns_the_last_real_feature():
    f = ReuseForecaster()
    f.update(tau(0), torch.zeros(4))
    last = torch.arange(4.0)
    f.update(tau(3), last)
    torch.testing.assert_close(f.predict(tau(9)), last)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="blend"):
        ChebyshevForecaster(blend=1.5)
    with pytest.raises(ValueError, match="order"):
        TaylorForecaster(order=3)


def test_capped_linear_is_exact_on_lines_within_the_cap_and_holds_beyond_it():
    from spectrum_core.method.forecasters import LinearForecaster

    line = poly_features(1)
    f = make_forecaster("linear")
    assert isinstance(f, LinearForecaster) and f.cap == 1.0
    f.update(tau(10), line(tau(10)))
    assert torch.equal(f.predict(tau(12)), line(tau(10)).float())  # one pass: reuse
    f.update(tau(14), line(tau(14)))
    for step in (15, 16, 18):  # k <= 1: on the line
        torch.testing.assert_close(f.predict(tau(step)).double(), line(tau(step)), rtol=1e-5, atol=1e-5)
    # k = 3 is capped at 1: the value one gap ahead, where an uncapped line would go three gaps ahead
    torch.testing.assert_close(f.predict(tau(26)).double(), line(tau(18)), rtol=1e-5, atol=1e-5)
    uncapped = make_forecaster("linear", linear_cap=5.0)
    for s in (10, 14):
        uncapped.update(tau(s), line(tau(s)))
    torch.testing.assert_close(uncapped.predict(tau(26)).double(), line(tau(26)), rtol=1e-5, atol=1e-5)


def test_chebyshev_blend_cap_only_changes_the_linear_term():
    steps, target = [0, 1, 2, 3, 4, 6], 20  # k = 7 gaps
    plain = weights(ChebyshevForecaster(blend=1.0), steps, target)
    ref = weights(ChebyshevForecaster(blend=0.5), steps, target)
    capped = weights(ChebyshevForecaster(blend=0.5, linear_cap=1.0), steps, target)
    lin = torch.zeros(len(steps), dtype=torch.float64)
    lin[-1], lin[-2] = 2.0, -1.0  # h_i + 1·(h_i − h_{i−1})
    torch.testing.assert_close(capped, 0.5 * plain + 0.5 * lin, rtol=1e-5, atol=1e-6)
    k = (target - 6) / 2
    lin[-1], lin[-2] = 1 + k, -k
    torch.testing.assert_close(ref, 0.5 * plain + 0.5 * lin, rtol=1e-5, atol=1e-6)
    # the reference test vectors (k = 1 there) are untouched by the cap
    torch.testing.assert_close(weights(ChebyshevForecaster(blend=0.5, linear_cap=1.0), [0, 1, 2, 3, 4], 5),
                               weights(ChebyshevForecaster(blend=0.5), [0, 1, 2, 3, 4], 5))
