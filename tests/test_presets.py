"""Presets: every shipped file loads, carries the defaults of docs/method.md#defaults, and points at real classes."""

from __future__ import annotations

import dataclasses

import diffusers
import pytest

from spectrum_core.hooks.families import variant
from spectrum_core.app.presets import (DEFAULT_MODEL, Preset, PresetError, list_presets, load_preset,
                                   load_preset_file, preset_for_model_dir, preset_names)

HUB = {"flux", "flux-schnell", "sd35", "hunyuan", "wan", "wan-1.3b", "wan22"}
TINY = {"tiny-flux", "tiny-sd35", "tiny-hunyuan", "tiny-wan", "tiny-wan22", "tiny-latte"}  # tiny-latte: its frames are video_length


def test_every_model_of_the_issue_has_a_preset():
    names = set(preset_names())
    assert HUB | TINY | {"shapes", "moving"} <= names
    assert DEFAULT_MODEL in names
    assert load_preset(DEFAULT_MODEL).source_kind in ("tiny", "embedded")  # runs anywhere


@pytest.mark.parametrize("preset", list_presets(), ids=lambda p: p.name)
def test_preset_points_at_real_classes(preset: Preset):
    assert hasattr(diffusers, preset.pipeline)
    if preset.scheduler:
        assert hasattr(diffusers, preset.scheduler["class"])
    assert preset.height % preset.size_multiple == 0 and preset.width % preset.size_multiple == 0
    if preset.is_video:
        assert (preset.frames - 1) % preset.frame_step == 0
    if preset.name in HUB:
        assert preset.source_kind == "hub" and "/" in preset.hub_id


@pytest.mark.parametrize("name", sorted(HUB - {"flux-schnell"}) + sorted(TINY) + ["shapes"])
def test_spectrum_defaults_follow_the_reference(name: str):
    spectrum = load_preset(name).spectrum  # docs/method.md#defaults: M=4, λ=0.1, w=0.5 (scripts), N=2, α=0.75, W=5
    s = spectrum.config
    assert (spectrum.method, s.forecaster, s.degree, s.ridge, s.blend, s.window, s.alpha, s.nfe, s.warmup) == (
        "spectrum", "chebyshev", 4, 0.1, 0.5, 2.0, 0.75, None, 5)


def test_per_model_settings_from_method_section_3():
    flux = load_preset("flux")
    assert (flux.hub_id, flux.dtype, flux.steps, flux.guidance, flux.height) == (
        "black-forest-labs/FLUX.1-dev", "bfloat16", 50, 3.5, 1024)
    assert load_preset("sd35").guidance == 7.0
    hy = load_preset("hunyuan")
    assert (hy.height, hy.width, hy.frames, hy.fps, hy.guidance) == (544, 960, 61, 24, 6.0)
    wan = load_preset("wan")
    assert (wan.hub_id, wan.height, wan.width, wan.frames, wan.fps, wan.guidance, wan.vae_dtype) == (
        "Wan-AI/Wan2.1-T2V-14B-Diffusers", 480, 832, 81, 16, 5.0, "float32")
    assert dict(wan.scheduler) == {"class": "UniPCMultistepScheduler", "prediction_type": "flow_prediction",
                                   "use_flow_sigmas": True, "flow_shift": 3.0, "num_train_timesteps": 1000}
    assert load_preset("wan-1.3b").hub_id == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"
    assert load_preset("wan22").hub_id == "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
    assert load_preset("flux-schnell").spectrum.method == "none"  # 4 steps: nothing to forecast


@pytest.mark.parametrize("name", sorted(TINY))
def test_tiny_presets_match_the_tiny_factory(name: str):
    from spectrum_core.models.tiny import TINY_CALL_KWARGS

    preset = load_preset(name)
    family = preset.source.split(":", 1)[1]
    expected = dict(TINY_CALL_KWARGS[family])
    got = {"height": preset.height, "width": preset.width, preset.guidance_kwarg: preset.guidance, **preset.call}
    if preset.is_video:  # LattePipeline names its frames video_length
        got[variant(preset.family)[1].frames_argument] = preset.frames
    assert got == expected


def test_presets_are_frozen():
    preset = load_preset("wan")
    with pytest.raises(dataclasses.FrozenInstanceError):
        preset.steps = 10
    with pytest.raises(TypeError):
        preset.scheduler["flow_shift"] = 5.0


def test_preset_file_round_trip(tmp_path):
    (tmp_path / "weights").mkdir()
    path = tmp_path / "mine.toml"
    path.write_text('source = "./weights"\npipeline = "FluxPipeline"\nfamily = "flux"\ndtype = "float32"\n'
                    'steps = 28\nheight = 512\nwidth = 768\n[spectrum]\nnfe = 10\nblend = 1.0\n')
    preset = load_preset_file(path)
    assert preset.name == "mine" and preset.source_kind == "path"
    assert preset.local_dir() == (tmp_path / "weights").resolve()
    assert (preset.steps, preset.height, preset.width) == (28, 512, 768)
    assert (preset.spectrum.config.nfe, preset.spectrum.config.alpha, preset.spectrum.config.blend) == (10, None, 1.0)


@pytest.mark.parametrize("text, message", [
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\nstepz = 3\n', "unknown key(s) stepz"),
    ('pipeline = "FluxPipeline"\nfamily = "flux"\n', "missing required key `source`"),
    ('source = "x"\npipeline = "P"\nfamily = "f"\nkind = "audio"\n', "kind must be one of"),
    ('source = "x"\npipeline = "P"\nfamily = "f"\n[spectrum]\nmethod = "magic"\n', "spectrum.method"),
    ('source = "x"\npipeline = "P"\nfamily = "wan"\nkind = "video"\n', "needs `frames` and `fps`"),
    ('source = "x"\npipeline = "P"\nfamily = "f"\n', "family must be one of flux, sd35, hunyuan, wan, wan22"),
    ('source = "x" pipeline', "not valid TOML"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\nsteps = "abc"\n', "steps must be a whole number, got 'abc'"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\nsteps = 2.5\n', "steps must be a whole number, got 2.5"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\nguidance = nan\n', "guidance must be a finite number"),
    ('source = "x"\npipeline = 3\nfamily = "flux"\n', "pipeline must be text, got 3"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\nfixed_size = "yes"\n', "fixed_size must be true or false"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\ncall = 3\n', "[call] must be a table"),
    ('source = "x"\npipeline = "FluxPipeline"\nfamily = "flux"\n[spectrum]\nalpha = inf\n', "alpha must be a finite number"),
])
def test_bad_preset_files_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PresetError) as info:
        load_preset_file(path)
    assert message in str(info.value) and "--" not in str(info.value)


def test_unknown_preset_lists_the_valid_ones():
    with pytest.raises(PresetError) as info:
        load_preset("wan3")
    assert "Unknown model 'wan3'" in str(info.value) and "tiny-flux" in str(info.value)


def test_model_dir_borrows_the_family_defaults(tmp_path):
    from spectrum_core.models.tiny import tiny_pipeline_dir

    folder = tiny_pipeline_dir("flux")
    bare = preset_for_model_dir(folder)
    assert bare.pipeline == "FluxPipeline" and bare.source == str(folder.resolve())
    assert bare.guidance == load_preset("flux").guidance
    based = preset_for_model_dir(folder, load_preset("tiny-flux"))
    assert based.height == 64 and based.source_kind == "path"
    with pytest.raises(PresetError, match="no model_index.json"):
        preset_for_model_dir(tmp_path)


def test_bare_wan22_folder_gets_the_two_expert_defaults():
    from spectrum_core.models.tiny import tiny_pipeline_dir

    assert preset_for_model_dir(tiny_pipeline_dir("wan22")).steps == load_preset("wan22").steps
    assert preset_for_model_dir(tiny_pipeline_dir("wan")).steps == load_preset("wan").steps


@pytest.mark.parametrize("name", ["shapes", "moving"])
def test_embedded_presets_match_the_models_call(name):
    """The presets call the embedded models exactly as they were trained (size, frames, text length)."""
    from spectrum_core.models import moving as moving_shapes, shapes

    defaults = {"shapes": shapes, "moving": moving_shapes}[name].PIPELINE_CALL_DEFAULTS
    preset = load_preset(name)
    got = {"height": preset.height, "width": preset.width, "num_inference_steps": preset.steps,
           preset.guidance_kwarg: preset.guidance, **preset.call}
    if preset.is_video:
        got["num_frames"] = preset.frames
    assert got == {k: v for k, v in defaults.items() if k in got}
    missing = set(defaults) - set(got)  # only FLUX's embedded guidance, which the shapes model does not have
    assert missing <= {"guidance_scale"} and all(defaults[k] <= 1.0 for k in missing)
