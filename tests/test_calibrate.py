"""spectrum calibrate: input refused before any model loads; the costs, weights and a real (tiny) run."""

import json

import pytest
import torch
from typer.testing import CliRunner

from spectrum_core.app import calibrate as cal
from spectrum_core.app import profiles
from spectrum_core.app.presets import load_preset
from spectrum_core.method.forecasters import make_forecaster
from spectrum_cli.main import app


def run(*args):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("args, message", [
    (["--nfe", "10,60"], "choose 2 to 49"),
    (["--nfe", "1"], "choose 2 to 49"),
    (["--nfe", "ten"], "whole numbers"),
    (["--nfe", ""], "whole numbers"),
    (["--steps", "2"], "3 or more"),
    (["--steps", "0"], "steps"),
    (["--guidance", "nan"], "guidance"),
    (["--prompts", "/nonexistent/prompts.txt"], "cannot read the prompts file"),
    (["--refine-sweeps", "-1"], "refinement sweeps"),
    (["--refine-sweeps", "11"], "refinement sweeps"),
    (["--refine-sweeps", "two"], "refine-sweeps"),
])
def test_bad_input_is_refused_before_loading(no_loading, args, message):
    result = run("calibrate", "-m", "shapes", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_prompts_are_checked_against_the_model(no_loading, tmp_path):
    file = tmp_path / "p.txt"
    file.write_text("a red circle on a navy background\n# comment\n\na purple dragon on a navy background\n")
    result = run("calibrate", "-m", "shapes", "--prompts", str(file))
    assert result.exit_code == 2 and "dragon" in result.output
    file.write_text("a red circle on a navy background\n")
    assert "at least two prompts" in run("calibrate", "-m", "shapes", "--prompts", str(file)).output


def test_default_prompts_avoid_the_benchmark_and_checks():
    from spectrum_core.models import prompt_world

    for name in ("shapes", "moving"):
        preset = load_preset(name)
        mine = cal.default_prompts(preset, 8)
        world = prompt_world(name)
        assert len(set(mine)) == 8 and not set(mine) & set(world.eval_prompts(24))
        plan = cal.plan_calibration(preset, [10, 14])
        seeds = {s for _, s in plan.trajectory + plan.selection}
        assert not seeds & {0, 1, 42, 1000}
        assert not {p for p, _ in plan.trajectory} & {p for p, _ in plan.selection}
        # the refinement scores schedules on yet other samples; the fast mode does not refine
        assert len(plan.refinement) == cal.FULL_REFINEMENT and plan.sweeps == cal.REFINE_SWEEPS
        others = plan.trajectory + plan.selection
        assert not {p for p, _ in plan.refinement} & {p for p, _ in others}
        assert not {s for _, s in plan.refinement} & (seeds | {0, 1, 42, 1000})
        assert not cal.plan_calibration(preset, [10], fast=True).refines
        assert not cal.plan_calibration(preset, [10], sweeps=0).refines


def test_forecast_costs_equal_the_capped_linear_forecaster():
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(7, 5, generator=g, dtype=torch.float64).cumsum(0)
    cost = cal.forecast_costs(feats @ feats.t())
    for a, b, s in [(0, 1, 2), (1, 3, 6), (0, 4, 5), (2, 3, 6)]:
        f = make_forecaster("linear")
        f.update(float(a), feats[a])
        f.update(float(b), feats[b])
        err = ((f.predict(float(s)).double() - feats[s]).norm() ** 2 / feats[s].norm() ** 2).item()
        assert cost[a + 1, b, s].item() == pytest.approx(err, rel=1e-4)
    assert cost[0, 2, 5].item() == pytest.approx(((feats[2] - feats[5]).norm() ** 2 / feats[5].norm() ** 2).item())


def test_weights_are_two_parts_of_mean_one():
    w = cal.step_weights(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 0.0, 0.0]))
    torch.testing.assert_close(w, torch.tensor([1, 4, 9], dtype=torch.float64) / (14 / 3))
    w = cal.step_weights(torch.ones(4), torch.tensor([1.0, 1.0, 1.0, 3.0]))
    assert w.mean().item() == pytest.approx(2.0)


def test_calibrating_a_tiny_model_writes_a_profile_that_runs_exactly_its_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRUM_PROFILES", str(tmp_path))
    out = tmp_path / "tiny.json"
    result = run("calibrate", "-m", "tiny-flux", "--steps", "12", "--nfe", "5,7", "--fast", "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    data = profiles.load_profile(out)
    assert json.loads(result.stdout)["id"] == data["id"]
    assert set(data["budgets"]) == {"5", "7"} and data["match"]["steps"] == 12
    for k, entry in data["budgets"].items():
        (steps,) = entry["real_steps"]
        assert len(steps) == int(k) and steps[0] == 0 and steps == sorted(set(steps)) and steps[-1] < 12
    assert data["calibration"]["runs"] > 0 and data["calibration"]["seconds"] > 0
    # gen finds it on its own for that model, step count and budget, and runs exactly those steps
    result = run("gen", "a cat", "-m", "tiny-flux", "--steps", "12", "--nfe", "5", "--json", "-o", str(tmp_path / "a.png"))
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout)
    assert rec["profile"] == data["id"]
    assert rec["real_steps"] == data["budgets"]["5"]["real_steps"][0]
    # the budget 5 is below what the reference rule can do at 12 steps (6 to 12): only the profile runs it
    result = run("gen", "a cat", "-m", "tiny-flux", "--steps", "12", "--nfe", "5", "--profile", "none",
                 "-o", str(tmp_path / "b.png"))
    assert result.exit_code == 2 and "6 to 12" in result.output
    rec = json.loads(run("gen", "a cat", "-m", "tiny-flux", "--steps", "12", "--nfe", "7", "--profile", "none",
                         "--json", "-o", str(tmp_path / "b.png")).stdout)
    assert rec["profile"] == "reference" and rec["nfe"] == 7
    assert rec["real_steps"] != data["budgets"]["7"]["real_steps"][0]
    # another budget or step count: the reference, never the nearest profile
    for extra in (["--steps", "12", "--nfe", "6"], ["--steps", "14", "--nfe", "7"]):
        rec = json.loads(run("gen", "a cat", "-m", "tiny-flux", *extra, "--json", "-o", str(tmp_path / "c.png"),
                             "--overwrite").stdout)
        assert rec["profile"] == "reference"


def test_refinement_on_a_tiny_model_is_recorded_checked_and_runs_exactly_its_steps(tmp_path, monkeypatch):
    """Fast mode with one refinement sweep: the profile records the optimiser's steps and the refined ones;
    a refined schedule replaces the optimiser's only when it did at least as well on the selection sample,
    and gen then runs exactly the recorded steps."""
    monkeypatch.setenv("SPECTRUM_PROFILES", str(tmp_path))
    prompts = tmp_path / "p.txt"
    prompts.write_text("a cat on a sofa\na dog in the snow\na bowl of fruit\n")
    out = tmp_path / "refined.json"
    result = run("calibrate", "-m", "tiny-flux", "--steps", "10", "--nfe", "5", "--fast", "--refine-sweeps", "1",
                 "--prompts", str(prompts), "-o", str(out))
    assert result.exit_code == 0, result.output
    data = profiles.load_profile(out)
    cal_record = data["calibration"]
    assert cal_record["refine_sweeps"] == 1 and [r["prompt"] for r in cal_record["refinement"]] == ["a bowl of fruit"]
    entry = data["budgets"]["5"]
    record = entry["refinement"]
    assert 1 <= record["schedules_scored"] <= 1 + 4 * 4          # the start and at most (K - 1) x 4 moves
    assert record["refinement_psnr_after"] >= record["refinement_psnr_before"]
    (refined,) = record["refined_steps"]
    assert len(refined) == 5 and refined[0] == 0 and refined == sorted(set(refined)) and refined[-1] < 10
    if record["kept"]:
        assert entry["real_steps"] == record["refined_steps"] != record["optimiser_steps"]
        assert record["selection_psnr_after"] >= record["selection_psnr_before"]
    else:
        assert entry["real_steps"] == record["optimiser_steps"]
    assert cal_record["runs"] <= cal.plan_calibration(load_preset("tiny-flux"), [5], steps=10, fast=True, sweeps=1,
                                                      prompts=prompts.read_text().split("\n")[:3]).runs
    rec = json.loads(run("gen", "a cat", "-m", "tiny-flux", "--steps", "10", "--nfe", "5", "--json",
                         "-o", str(tmp_path / "a.png")).stdout)
    assert rec["profile"] == data["id"] and rec["real_steps"] == entry["real_steps"][0] and rec["nfe"] == 5
