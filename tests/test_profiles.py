"""Profiles round-trip, apply only on an exact match, and never silently when they do not fit."""

import json

import pytest

from spectrum_core.app import profiles
from spectrum_core.app.presets import load_preset
from spectrum_core.method.config import SpectrumConfig


def measured(budgets=(10, 14)):
    return {"budgets": {str(k): {"real_steps": [[0, 1, 2] + list(range(10, 10 + 3 * (k - 3), 3))],
                                 "forecaster": "linear cap 1",
                                 "config": {"forecaster": "linear", "blend": 0.5, "linear_cap": 1.0},
                                 "psnr": 40.0, "reference_psnr": 35.0, "gain_db": 5.0} for k in budgets},
            "calibration": {"runs": 3, "seconds": 1.0}}


@pytest.fixture
def preset():
    return load_preset("shapes")


@pytest.fixture
def written(preset, tmp_path):
    key = profiles.match_key(preset, 50, 2.0, 64, 64, None)
    data = profiles.make_profile(preset, key, measured())
    return profiles.write_profile(data, tmp_path / "p.json"), data


def resolve(preset, path, search, **kw):
    args = dict(steps=50, guidance=2.0, height=64, width=64, frames=None)
    args.update(kw)
    config = kw.pop("config", preset.spectrum.config.replace(nfe=args.pop("nfe", 10)))
    args.pop("config", None)
    return profiles.resolve(preset, config, args.pop("steps"), args.pop("guidance"), path, search=search, **args)


def test_round_trip(written):
    path, data = written
    assert profiles.load_profile(path) == json.loads(json.dumps(data))
    cfg = profiles.profile_config(SpectrumConfig(blend=0.5), data, 10)
    assert cfg.real_steps == (tuple(data["budgets"]["10"]["real_steps"][0]),) and cfg.nfe == 10
    assert cfg.forecaster == "linear" and cfg.linear_cap == 1.0


def test_automatic_lookup_applies_only_an_exact_match(preset, written, tmp_path):
    path, data = written
    search = (tmp_path,)
    cfg, ident = resolve(preset, None, search, given=("nfe",))
    assert ident == data["id"] and len(cfg.real_steps[0]) == 10
    # the preset's own schedule (alpha 0.75 -> 14 of 50) finds the 14 budget with no knob at all
    cfg, ident = resolve(preset, None, search, config=preset.spectrum.config)
    assert ident == data["id"] and cfg.nfe == 14
    for change in (dict(nfe=12), dict(steps=30), dict(guidance=3.0), dict(height=32)):
        cfg, ident = resolve(preset, None, search, **change)
        assert ident == "reference" and cfg.real_steps is None, change
    # a schedule or forecaster knob asks for the reference as given
    cfg, ident = resolve(preset, None, search, given=("nfe", "blend"))
    assert ident == "reference"
    assert resolve(preset, "none", search)[1] == "reference"
    # another model's profile is not this one's
    other = load_preset("moving")
    cfg, ident = profiles.resolve(other, other.spectrum.config.replace(nfe=10), 50, 2.0, None, height=64,
                                  width=64, frames=9, search=search)
    assert ident == "reference"


def test_explicit_profile_that_does_not_fit_is_an_error(preset, written, tmp_path):
    path, data = written
    assert resolve(preset, str(path), ())[1] == data["id"]
    with pytest.raises(profiles.ProfileError, match="steps 50, this request has 30") as info:
        resolve(preset, str(path), (), steps=30)
    assert info.value.field == "steps"
    with pytest.raises(profiles.ProfileError, match="budgets 10, 14") as info:
        resolve(preset, str(path), (), nfe=12)
    assert info.value.field == "nfe"
    with pytest.raises(profiles.ProfileError, match="`alpha` and `profile`"):
        resolve(preset, str(path), (), given=("alpha",))
    with pytest.raises(profiles.ProfileError, match="method taylor"):
        resolve(preset, str(path), (), method="taylor")
    with pytest.raises(profiles.ProfileError, match="no profile file"):
        resolve(preset, str(tmp_path / "missing.json"), ())
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(profiles.ProfileError, match="not a spectrum profile"):
        resolve(preset, str(tmp_path / "bad.json"), ())
    broken = json.loads(path.read_text())
    broken["budgets"]["10"]["real_steps"] = [[3, 1]]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(profiles.ProfileError, match="budget 10 is not valid"):
        resolve(preset, str(tmp_path / "broken.json"), ())


def test_other_weights_have_another_fingerprint(tmp_path):
    import shutil

    from spectrum_core.app.presets import preset_for_model_dir
    from spectrum_core.models import EMBEDDED_DIR

    shipped = load_preset("shapes")
    copy = tmp_path / "shapes"
    shutil.copytree(EMBEDDED_DIR / "shapes", copy)
    same = profiles.model_fingerprint(preset_for_model_dir(copy, shipped))
    assert same == profiles.model_fingerprint(shipped)
    cfg = json.loads((copy / "transformer" / "config.json").read_text())
    cfg["num_layers"] = cfg.get("num_layers", 1) + 1
    (copy / "transformer" / "config.json").write_text(json.dumps(cfg))
    assert profiles.model_fingerprint(preset_for_model_dir(copy, shipped)) != same


def test_shipped_profiles_are_valid_and_match_their_presets():
    shipped = profiles.find_profiles(profiles.shipped_dirs())
    assert {data["preset"] for _, data in shipped} >= {"shapes", "moving"}
    for path, data in shipped:
        preset = load_preset(data["preset"])
        assert data["match"]["model"] == profiles.model_fingerprint(preset), path
        for k, entry in data["budgets"].items():
            steps = [s for segment in entry["real_steps"] for s in segment]
            assert len(steps) == int(k) and all(0 <= s < data["match"]["steps"] for s in steps)


@pytest.mark.parametrize("name", ["shapes", "moving"])
def test_python_users_get_the_profile_build_job_applies(name):
    """profiled_config (the step before apply_spectrum) picks the same profile and config as build_job."""
    from spectrum_core import profiled_config
    from spectrum_core.app.request import build_job
    from spectrum_core.models import prompt_world

    preset = load_preset(name)
    prompt = prompt_world(name).eval_prompts(1)[0]
    for knobs in ({"nfe": 10}, {"nfe": 14}, {"nfe": 10, "steps": 30}, {"nfe": 9, "steps": 40}, {}):
        job = build_job(preset, prompt, knobs)
        config, used = profiled_config(name, **knobs)
        assert (config, used) == (job.spectrum, job.profile), knobs
    assert profiled_config(name, nfe=10)[1] != profiles.REFERENCE          # shipped: 50 steps, 10 of 50
    assert profiled_config(name, nfe=9, steps=40)[1] == profiles.REFERENCE  # never the nearest
    assert profiled_config(name, "none", nfe=10)[1] == profiles.REFERENCE
