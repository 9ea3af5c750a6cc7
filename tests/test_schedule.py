"""The schedule: the reference rule's step lists and the NFE target mode."""

import pytest

from spectrum_core import SpectrumConfig
from spectrum_core.method.schedule import nfe_range, plan_segments, real_steps, solve_nfe

# docs/method.md#alpha-and-real-passes, computed from the reference logic (N=2, W=5, 50 steps).
REFERENCE = {
    0.0: [0, 1, 2, 3, 4] + list(range(6, 49, 2)),
    0.5: [0, 1, 2, 3, 4, 6, 8, 11, 14, 18, 22, 27, 32, 38, 44],
    0.75: [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25, 31, 38, 46],
    1.0: [0, 1, 2, 3, 4, 6, 9, 13, 18, 24, 31, 39, 48],
    1.5: [0, 1, 2, 3, 4, 6, 9, 14, 20, 28, 37, 48],
    2.0: [0, 1, 2, 3, 4, 6, 10, 16, 24, 34, 46],
    2.5: [0, 1, 2, 3, 4, 6, 10, 17, 26, 38],
    3.0: [0, 1, 2, 3, 4, 6, 11, 19, 30, 44],
    4.0: [0, 1, 2, 3, 4, 6, 12, 22, 36],
}


@pytest.mark.parametrize("alpha", sorted(REFERENCE))
def test_reference_step_lists(alpha):
    assert real_steps(50, warmup=5, window=2, alpha=alpha) == REFERENCE[alpha]


@pytest.mark.parametrize("k", range(6, 51))
def test_every_nfe_from_warmup_plus_one_to_fifty_is_exact(k):
    schedule = solve_nfe(50, k, warmup=5, window=2.0)
    assert schedule.nfe == k
    assert list(schedule.steps) == real_steps(50, schedule.warmup, schedule.window, schedule.alpha)
    assert list(schedule.steps[: schedule.warmup]) == list(range(schedule.warmup))


@pytest.mark.parametrize("num_steps", [8, 20, 28, 37, 64, 100])
@pytest.mark.parametrize("warmup", [3, 5])
def test_nfe_mode_reaches_every_k_at_other_step_counts(num_steps, warmup):
    lo, hi = nfe_range(num_steps, warmup)
    assert (lo, hi) == (warmup + 1, num_steps)
    for k in range(lo, hi + 1):
        assert solve_nfe(num_steps, k, warmup=warmup).nfe == k


def test_nfe_targets_reproduce_the_paper_anchors():
    assert list(solve_nfe(50, 14).steps) == REFERENCE[0.75]
    assert list(solve_nfe(50, 10).steps) == REFERENCE[3.0]


@pytest.mark.parametrize("k", [0, 5, 51, 100])
def test_unattainable_nfe_names_the_range(k):
    with pytest.raises(ValueError, match="choose 6 to 50"):
        solve_nfe(50, k)


def test_force_last_makes_the_final_step_real_and_counts_it():
    assert real_steps(50, 5, 2, 0.75, force_last=True)[-1] == 49
    for k in (8, 10, 14, 20):
        s = solve_nfe(50, k, force_last=True)
        assert s.nfe == k and s.steps[-1] == 49


def test_segments_restart_warmup_and_total_the_target():
    plans = plan_segments((44, 6), warmup=5, window=2.0, alpha=None, nfe=14, force_last=False)
    assert sum(p.nfe for p in plans) == 14
    assert all(list(p.steps[:5]) == [0, 1, 2, 3, 4] for p in plans)
    for lengths in [(44, 6), (25, 25), (10, 40), (3, 30)]:
        lo = sum(nfe_range(n, 5)[0] for n in lengths)
        for k in range(lo, sum(lengths) + 1):
            assert sum(p.nfe for p in plan_segments(lengths, warmup=5, window=2.0, alpha=None, nfe=k, force_last=False)) == k
    with pytest.raises(ValueError, match="choose 12 to 50"):
        plan_segments((25, 25), warmup=5, window=2.0, alpha=None, nfe=10, force_last=False)


def test_config_validation_messages():
    with pytest.raises(ValueError, match="either nfe"):
        SpectrumConfig(nfe=14, alpha=0.75)
    with pytest.raises(ValueError, match="Unknown forecaster 'x'"):
        SpectrumConfig(forecaster="x")
    with pytest.raises(ValueError, match="Unknown Spectrum setting"):
        SpectrumConfig.from_dict({"nfe": 14, "speed": 3})
    assert SpectrumConfig(nfe=14).replace(alpha=3.0).nfe is None
    assert SpectrumConfig().effective_alpha == 0.75


def test_taylorseer_uniform_schedule_budgets():
    from spectrum_core.method.schedule import uniform_steps

    assert uniform_steps(50, warmup=3, interval=4) == [0, 1, 2] + list(range(6, 50, 4))
    assert len(uniform_steps(50, 3, 4)) == 14 and len(uniform_steps(50, 3, 6)) == 10
    plans = plan_segments((50,), warmup=3, window=2.0, alpha=None, nfe=None, force_last=False, interval=6)
    assert list(plans[0].steps) == [0, 1, 2, 8, 14, 20, 26, 32, 38, 44]
    with pytest.raises(ValueError, match="interval"):
        SpectrumConfig(interval=4, nfe=14)
    assert SpectrumConfig(nfe=14).replace(interval=4).nfe is None


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(alpha=float("nan")), "alpha"),
        (dict(window=float("inf")), "window"),
        (dict(ridge=-0.1), "ridge"),
        (dict(blend=1.5), "blend"),
        (dict(nfe=True), "nfe"),
        (dict(nfe=14.0), "nfe"),
        (dict(warmup=2.5), "warmup"),
        (dict(degree=False), "degree"),
        (dict(degree=17), "degree"),
        (dict(interval=0), "interval"),
        (dict(tau_horizon=50.0), "tau_horizon"),
        (dict(taylor_order=3), "taylor_order"),
        (dict(force_last="yes"), "force_last"),
        (dict(nfe=14, interval=4), "interval"),
    ],
)
def test_config_error_names_the_field(kwargs, field):
    from spectrum_core.method.config import ConfigError

    with pytest.raises(ConfigError) as info:
        SpectrumConfig(**kwargs)
    assert info.value.field == field and info.value.expected
    assert "--" not in str(info.value)  # field names, never CLI flags


def test_explicit_real_steps_are_validated_and_planned():
    from spectrum_core.method.config import ConfigError
    from spectrum_core.method.schedule import plan_config

    cfg = SpectrumConfig(real_steps=[0, 1, 2, 7, 30, 49], nfe=6)
    assert cfg.real_steps == ((0, 1, 2, 7, 30, 49),) and cfg.effective_alpha is None
    (plan,) = plan_config(cfg, (50,))
    assert plan.steps == (0, 1, 2, 7, 30, 49) and plan.warmup == 3
    assert cfg.to_dict()["real_steps"] == [[0, 1, 2, 7, 30, 49]]
    assert SpectrumConfig.from_dict(cfg.to_dict()) == cfg  # round-trips through a TOML/JSON table
    for bad in ([1, 2, 3], [0, 3, 2], [0, 2, 2], [0, -1], [], [0, 1.5], "0,1", [[0, 1], [2, 3]]):
        with pytest.raises(ConfigError) as info:
            SpectrumConfig(real_steps=bad)
        assert info.value.field == "real_steps"
    with pytest.raises(ConfigError, match="must agree"):
        SpectrumConfig(real_steps=[0, 1, 5], nfe=4)
    with pytest.raises(ConfigError, match="not both"):
        SpectrumConfig(real_steps=[0, 1, 5], alpha=3.0)
    with pytest.raises(ValueError, match="has step 49 but the run has 30 steps"):
        plan_config(cfg, (30,))
    with pytest.raises(ValueError, match="2 segment"):
        plan_config(SpectrumConfig(real_steps=[[0, 3], [0, 2]]), (50,))
    two = plan_config(SpectrumConfig(real_steps=[[0, 1, 9], [0, 4]]), (40, 10))
    assert [p.steps for p in two] == [(0, 1, 9), (0, 4)]
    # a given schedule key displaces the explicit list and the other way round; nfe may ride along
    assert cfg.replace(alpha=3.0).real_steps is None
    swapped = SpectrumConfig(nfe=10).replace(real_steps=[[0, 5]], nfe=2)
    assert swapped.nfe == 2 and swapped.real_steps == ((0, 5),)
    assert SpectrumConfig(alpha=3.0).replace(real_steps=[0, 5]).alpha is None


def test_reference_rule_is_what_plan_config_gives_without_a_list():
    from spectrum_core.method.schedule import plan_config

    for kwargs in [dict(nfe=14), dict(nfe=10), dict(alpha=3.0), dict(interval=6, warmup=3)]:
        cfg = SpectrumConfig(**kwargs)
        expected = plan_segments((50,), warmup=cfg.warmup, window=cfg.window, alpha=cfg.effective_alpha,
                                 nfe=cfg.nfe, force_last=cfg.force_last, interval=cfg.interval)
        assert plan_config(cfg, (50,)) == expected
    assert plan_config(SpectrumConfig(nfe=10), (50,))[0].steps == (0, 1, 2, 3, 4, 6, 11, 19, 30, 44)
