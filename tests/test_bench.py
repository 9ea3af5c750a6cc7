"""The benchmark suite on a slice of its quick mode: it runs, its numbers are finite, every fixed schedule
makes exactly the real passes it promises, and the accelerated calls are faster than the 50-step call."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from spectrum_core.bench import SuiteOptions, run_suite
from spectrum_core.bench.methods import PassCounter, _count_run, _enable, _taylorseer_knobs
from spectrum_core.bench.models import generate, resolve_models


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    options = SuiteOptions(quick=True, out=out, models=["tiny-flux"], samples=2, budgets=(10,),
                           diffusers_caches=False, speed_repeats=1, charts=False)
    return run_suite(options), out


def test_suite_writes_sane_results(results):
    res, out = results
    assert [c["check"] for c in res["checks"] if not c["ok"]] == []
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk["checks"] == res["checks"]
    md = (out / "results.md").read_text()
    assert "random-weight tiny model: plumbing, not fidelity" in md
    assert "Amdahl limit" in md


def test_fidelity_rows_are_finite_and_nfe_exact(results):
    (model,) = results[0]["fidelity"]
    names = {r["method"] for r in model["rows"]}
    assert {"spectrum w=1", "spectrum w=0.5", "TaylorSeer N=6 O=1", "reuse (spectrum schedule)"} <= names
    for row in model["rows"]:
        assert math.isfinite(row["psnr"]["mean"]) and 0 < row["ssim"]["mean"] <= 1
        assert row["per_sample"]["nfe"] == [10.0, 10.0]
        assert row["reported_nfe_matches"]
    assert model["baseline_nfe"] == [50.0, 50.0]


def test_speed_is_above_one_and_below_its_limit_band(results):
    speed = results[0]["speed"]
    assert 0.5 < speed["block_share"] < 1
    for row in speed["rows"]:
        assert row["nfe"] == row["budget"]
        assert row["speedup"] > 1
        assert 1 < row["amdahl_limit"] <= 50 / row["nfe"]


def test_cost_rows_and_state_size(results):
    cost = results[0]["cost"]
    assert cost["memcpy_bytes_per_second"] > 0
    for row in cost["rows"]:
        assert row["update_seconds"] > 0 and row["predict_w1_seconds"] > 0
        numel, e_in = row["shape"][0] * row["shape"][1], 2 if row["dtype"] == "bfloat16" else 4
        if row["variant"] == "before" or e_in == 4:
            assert row["state_w1_bytes"] == 5 * 4 * numel  # w=1: (M+1) float32 rows only
            assert row["state_bytes"] == 5 * 4 * numel + 2 * e_in * numel  # w=0.5: + the last two features
        else:  # float16 rows (+ their reference feature at w=1), issue 17's bound: <= half the reference
            assert row["state_w1_bytes"] == 5 * 2 * numel + e_in * numel
            assert row["state_bytes"] == 5 * 2 * numel + 2 * e_in * numel
            assert row["state_vs_reference"] <= 0.5
        if row["variant"] == "now":
            assert row["update_impl_vs_ideal"] <= 2  # one fused pass
    assert {r["variant"] for r in cost["rows"]} == {"before", "now"}


def test_pass_counter_counts_diffusers_taylorseer_lite_exactly(tiny_pipes):
    from diffusers import TaylorSeerCacheConfig

    pipe = tiny_pipes("flux")
    (model,) = resolve_models(["tiny-flux"], quick=True)
    before, interval = _taylorseer_knobs(14)
    apply = _enable(lambda: TaylorSeerCacheConfig(cache_interval=interval, disable_cache_before_step=before,
                                                  use_lite_mode=True, taylor_factors_dtype=torch.float32))
    assert _count_run(pipe, lambda: generate(pipe, model, "a red circle on a navy background", 0), apply) == 14
    counter = PassCounter(pipe)
    try:
        generate(pipe, model, "a red circle on a navy background", 0, steps=50)
        assert counter.nfe() == 50 and counter.block_passes() == 50
    finally:
        counter.close()


def test_cli_rejects_an_unknown_model_before_any_work(tmp_path):
    from spectrum_cli.bench import bench
    import typer

    app = typer.Typer()
    app.command()(bench)
    app.command("other")(lambda: None)  # more than one command keeps `bench` as a subcommand
    result = CliRunner().invoke(app, ["bench", "--models", "tiny-nope", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "Unknown benchmark model 'tiny-nope'" in result.output
    assert not (tmp_path / "results.json").exists()


def test_paired_table_compares_sample_by_sample():
    from spectrum_core.bench.report import paired_table

    ref = [30.0, 40.0, 35.0, 50.0]
    rows = [{"method": "spectrum w=0.5", "budget": 10, "per_sample": {"psnr": ref}},
            {"method": "always 1 dB worse", "budget": 10, "per_sample": {"psnr": [x - 1 for x in ref]}},
            {"method": "better twice", "budget": 10, "per_sample": {"psnr": [31.0, 39.0, 36.0, 49.0]}},
            {"method": "other budget", "budget": 14, "per_sample": {"psnr": ref}}]
    table = paired_table({"rows": rows}, 10)
    assert "| always 1 dB worse | +1.00 ± 0.00 | 4 of 4 |" in table
    assert "| better twice | +0.00 ± 0.58 | 2 of 4 |" in table  # means equal; the s.e. shows the spread
    assert "other budget" not in table and table.count("\n") == 3
    assert paired_table({"rows": rows[1:]}, 10) == ""  # no reference row: no table


def test_heldout_samples_are_valid_prompts_on_seeds_no_other_set_uses():
    from spectrum_core.app.calibrate import CALIBRATION_SEED
    from spectrum_core.bench.models import heldout_samples, samples
    from spectrum_core.models import prompt_world

    for model in resolve_models(["shapes", "moving"], False):
        pairs = heldout_samples(model, 12, 9100)
        assert pairs == heldout_samples(model, 12, 9100)  # reproducible
        assert [s for _, s in pairs] == [9100 + 53 * i for i in range(12)]
        assert not {s for _, s in pairs} & ({s for _, s in samples(model, 16)} | {1000})
        assert max(s for _, s in pairs) < CALIBRATION_SEED
        for prompt, _ in pairs:
            prompt_world(model.name).parse_prompt(prompt)  # raises on a prompt outside the grammar
        assert len({p for p, _ in pairs}) > 6  # drawn, not one prompt repeated
