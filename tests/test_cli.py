"""The `spectrum` command, driven through Typer's CliRunner on tiny models (and once as a real process).

Runs are kept short (few steps) except the A/B test, where 14 of 50 steps is the point.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spectrum_cli.main import app
from spectrum_core.app import media
from spectrum_core.app.presets import DEFAULT_MODEL

RECORD_KEYS = {"model", "prompt", "seed", "steps", "method", "nfe", "real_steps", "forecast_steps", "seconds",
               "transformer_seconds", "output"}
COMPARE_KEYS = {"baseline_seconds", "speedup", "psnr", "ssim"}
FAST = ["--steps", "8", "--nfe", "6"]
PROMPT = "a red circle on a navy background"  # in the default (embedded) model's vocabulary
TINY = ["-m", "tiny-flux"]  # explicit, so these tests do not change when the default model does


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    return os.environ.get("SPECTRUM_CACHE") or str(tmp_path_factory.mktemp("spectrum-cache"))


@pytest.fixture(autouse=True)
def _workdir(tmp_path, monkeypatch, cache_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_CACHE", cache_dir)
    monkeypatch.delenv("SPECTRUM_DEBUG", raising=False)


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def records(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def check_record(rec: dict, steps: int) -> None:
    assert RECORD_KEYS <= set(rec)
    assert sorted(rec["real_steps"] + rec["forecast_steps"]) == list(range(steps))
    assert rec["nfe"] == len(rec["real_steps"])
    assert rec["seconds"] > 0 and 0 < rec["transformer_seconds"] <= rec["seconds"]
    assert Path(rec["output"]).is_file()


# --- help and presets ---------------------------------------------------------------------------

def test_help_has_every_command_and_examples():
    result = run("--help")
    assert result.exit_code == 0 and "Examples" in result.stdout
    for command in ("gen", "ab", "batch", "presets", "grid", "bench"):
        assert command in result.stdout
    for command in (["gen"], ["ab"], ["batch"], ["grid"], ["bench"], ["presets"], ["presets", "show"]):
        sub = run(*command, "--help")
        assert sub.exit_code == 0 and "Examples" in sub.stdout, command


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("spectrum ")


def test_presets_table_and_json():
    result = run("presets")
    assert result.exit_code == 0 and result.stderr == ""  # the table is the command's output: stdout
    for name in ("flux", "flux-schnell", "sd35", "hunyuan", "wan", "wan-1.3b", "wan22", "tiny-flux", "tiny-wan"):
        assert name in result.stdout
    listed = json.loads(run("presets", "--json").stdout)
    assert {p["name"] for p in listed} >= {"flux", "wan22", "tiny-flux"}


def test_presets_show():
    result = run("presets", "show", "wan")
    assert result.exit_code == 0 and "UniPCMultistepScheduler" in result.stdout and "flow_shift=3.0" in result.stdout
    shown = json.loads(run("presets", "show", "wan", "--json").stdout)
    assert shown["scheduler"]["flow_shift"] == 3.0 and shown["spectrum"]["alpha"] == 0.75
    missing = run("presets", "show", "wan3")
    assert missing.exit_code == 2 and "Unknown model 'wan3'" in missing.stderr


# --- gen ----------------------------------------------------------------------------------------

def test_gen_image_json_and_png_metadata():
    result = run("gen", "a red circle on a navy background", *TINY, *FAST, "--seed", "3", "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)  # exactly one JSON object on stdout, nothing else
    check_record(rec, steps=8)
    assert (rec["model"], rec["seed"], rec["method"], rec["nfe"]) == ("tiny-flux", 3, "spectrum", 6)
    assert rec["estimated_speedup"] > 1
    assert Path(rec["output"]).name == "tiny-flux_a-red-circle-on-a-navy-background_s3_cheb-nfe6.png"
    meta = media.read_png_metadata(Path(rec["output"]))
    assert (meta["prompt"], meta["seed"], meta["steps"], meta["nfe"]) == ("a red circle on a navy background", 3, 8, 6)
    assert meta["spectrum"]["forecaster"] == "chebyshev"
    assert "estimated" in result.stderr and "real passes (NFE)" in result.stderr


def test_gen_never_overwrites_by_default():
    args = ("gen", "a blue square", *TINY, "--method", "none", "--steps", "2", "--json")
    first, second = records(run(*args)), records(run(*args))
    assert first[0]["output"] != second[0]["output"]
    assert second[0]["output"].endswith("_base-1.png")
    explicit = run("gen", "a blue square", *TINY, "--method", "none", "--steps", "2", "--out", first[0]["output"])
    assert explicit.exit_code == 2 and "--overwrite" in explicit.stderr
    forced = run("gen", "a blue square", *TINY, "--method", "none", "--steps", "2", "--out", first[0]["output"],
                 "--overwrite", "--seed", "5")
    assert forced.exit_code == 0 and media.read_png_metadata(Path(first[0]["output"]))["seed"] == 5


def test_gen_video_mp4_with_sidecar():
    result = run("gen", "waves at dusk", "-m", "tiny-wan", *FAST, "--out", "clips/", "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    check_record(rec, steps=8)
    path = Path(rec["output"])
    assert path.parent.name == "clips" and path.suffix == ".mp4"
    assert media.read_mp4(path).shape == (5, 64, 64, 3)  # the preset's 5 frames at 64x64
    sidecar = json.loads(media.sidecar_path(path).read_text())
    assert (sidecar["prompt"], sidecar["frames"], sidecar["fps"]) == ("waves at dusk", 5, 8)


def test_ab_at_14_of_50_steps_is_faster_and_faithful():
    result = run("ab", "a red circle on a navy background", *TINY, "--nfe", "14", "--steps", "50", "-H", "32", "-W", "32",
                 "--out", "ab.png", "--pairs", "3", "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    check_record(rec, steps=50)
    assert COMPARE_KEYS <= set(rec) and rec["nfe"] == 14
    assert rec["pairs"] == 3 and rec["speedup_min"] <= rec["speedup"] <= rec["speedup_max"]
    assert rec["speedup"] > 1.0  # the median of three pairs
    assert math.isfinite(rec["psnr"]) and rec["psnr"] > 20
    assert 0.5 < rec["ssim"] <= 1.0
    assert rec["baseline_seconds"] > rec["seconds"]
    for key in ("output", "baseline_output", "comparison_output"):
        assert Path(rec[key]).is_file()
    assert media.read_png_metadata(Path(rec["baseline_output"]))["method"] == "none"
    from PIL import Image

    with Image.open(rec["comparison_output"]) as both:
        assert both.size == (32 * 2 + 2, 32)
    assert "measured (median of 3 pairs" in result.stderr and "PSNR" in result.stderr


def test_compare_video_writes_side_by_side_mp4():
    result = run("gen", "waves", "-m", "tiny-wan", *FAST, "-H", "32", "-W", "32", "--compare", "--out", "w.mp4",
                 "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    assert COMPARE_KEYS <= set(rec) and math.isfinite(rec["psnr"])
    assert media.read_mp4(Path(rec["comparison_output"])).shape == (5, 32, 66, 3)
    assert media.read_mp4(Path(rec["baseline_output"])).shape[0] == 5


# --- batch --------------------------------------------------------------------------------------

def test_batch_resume_and_failures(tmp_path, monkeypatch):
    from spectrum_core.app.runner import Runner

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a red circle\n\n# a comment\na boom prompt\na green triangle\n")
    args = ("batch", str(prompts), *TINY, "--out-dir", "out", "--method", "none", "--steps", "2", "--json")
    real_generate = Runner.generate

    def flaky(self, job, on_step=None):
        if "boom" in job.prompt:
            raise RuntimeError("out of memory (simulated)")
        return real_generate(self, job, on_step)

    monkeypatch.setattr(Runner, "generate", flaky)
    first = run(*args)
    assert first.exit_code == 1  # one prompt failed, the others went on
    recs = records(first)
    assert [r["status"] for r in recs] == ["ok", "error", "ok"]
    assert [r["line"] for r in recs] == [1, 4, 5]
    assert "simulated" in recs[1]["error"]
    manifest = Path("out/results.jsonl")
    assert len(manifest.read_text().splitlines()) == 3

    monkeypatch.setattr(Runner, "generate", real_generate)
    second = run(*args)
    assert second.exit_code == 0
    assert [r["prompt"] for r in records(second)] == ["a boom prompt"]  # only what had not succeeded
    assert "2 of 3 prompts already done" in second.stderr
    third = run(*args)
    assert third.exit_code == 0 and records(third) == []


def test_batch_jsonl_overrides(tmp_path):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"prompt": "a fox", "seed": 9, "size": "48x32", "out": "fox.png"}) + "\n"
                    + json.dumps({"prompt": "a cat", "nfe": 6}) + "\n")
    result = run("batch", str(jobs), *TINY, "--out-dir", "o", "--steps", "8", "--alpha", "3", "--json")
    assert result.exit_code == 0, result.stderr
    fox, cat = records(result)
    assert fox["output"] == str(Path("o/fox.png")) and fox["seed"] == 9 and (fox["width"], fox["height"]) == (48, 32)
    assert fox["spectrum"]["alpha"] == 3.0
    assert cat["nfe"] == 6 and cat["spectrum"]["alpha"] is None
    assert media.read_png_metadata(Path(fox["output"]))["prompt"] == "a fox"


# --- bad input: one line, exit 2, no traceback --------------------------------------------------

@pytest.fixture
def no_hub_weights(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-hub"))


@pytest.mark.parametrize("args, message", [
    (["gen", "x", "-m", "wan3"], "Unknown model 'wan3'. Choose from: "),
    (["gen", "x", *TINY, "--nfe", "3", "--steps", "20"], "choose 6 to 20"),
    (["gen", "x", *TINY, "--nfe", "60"], "choose 6 to 50"),
    (["gen", "x", "-m", "tiny-wan22", "--nfe", "7", "--steps", "10"], "choose 10 to 10"),  # two warm-ups
    (["gen", "x", *TINY, "--height", "50"], "not a positive multiple of 16"),
    (["gen", "x", *TINY, "--frames", "9"], "--frames/--fps are for video models"),
    (["gen", "x", "-m", "tiny-wan", "--frames", "6"], "needs 4k+1 frames; try 5 or 9"),
    (["gen", "x", *TINY, "--nfe", "8", "--alpha", "1"], "not both"),
    (["gen", "x", *TINY, "--method", "none", "--nfe", "8"], "--nfe 8 has no effect when --method is none"),
    (["gen", "x", *TINY, "--method", "none", "--degree", "3"], "--degree 3 has no effect when --method is none"),
    (["gen", "x", *TINY, "--method", "taylor", "--blend", "0.5"], "--blend 0.5 has no effect when --method is taylor"),
    (["gen", "x", *TINY, "--blend", "2"], "--blend must be a finite number from 0 to 1, got 2.0"),
    (["gen", "x", *TINY, "--alpha", "nan"], "--alpha must be a finite number >= 0, got nan"),
    (["gen", "x", *TINY, "--window", "inf"], "--window must be a finite number >= 1, got inf"),
    (["gen", "x", *TINY, "--guidance", "inf"], "--guidance must be a finite number >= 0, got inf"),
    (["gen", "x", *TINY, "--height", "-64"], "--height -64 is not a positive multiple of 16, which tiny-flux needs; "
                                             "the smallest is 16."),
    (["gen", "x", *TINY, "--seed", str(2**64)], "--seed must be a whole number from 0 to 18446744073709551615"),
    (["gen", "x", *TINY, "--threads", "100000"], "--threads must be a whole number from 1 to"),
    (["gen", "x", *TINY, "--degree", "100"], "--degree must be a whole number from 0 to 16, got 100"),
    (["gen", "x", *TINY, "--real-steps", "0,1,99"], "--real-steps: real_steps has step 99 but the run has 50 steps"),
    (["gen", "x", *TINY, "--steps", "20", "--real-steps", "0,1,20"], "has step 20 but the run has 20 steps"),
    (["gen", "x", *TINY, "--lora", "x:abc:"], "--lora x:abc:: no such file"),  # printed as typed, no emoji
    (["gen", "x", *TINY, "--nfe", "abc"], "Invalid value for '--nfe'"),  # Click's own parse errors, one line too
    (["gen", "x", *TINY, "--nfee", "3"], "No such option: --nfee"),
    (["gen", "x", *TINY, "-q"], "-q is an option of `spectrum` itself: `spectrum -q gen ...`"),
    (["gen", "x", *TINY, "--offload", "true"], "unexpected extra argument(s) (true)"),
    (["gen", "  ", *TINY], "prompt is empty"),
    (["gen", "x", *TINY, "-o", "out.jpg"], "written as PNG"),
    (["gen", "x", *TINY, "--device", "cuda"], "no CUDA device"),
    (["gen", "x", *TINY, "--offload"], "--offload"),
    (["gen", "x", *TINY, "--compare", "--method", "none"], "drop --method none"),
    (["ab", "x", "--model-path", "."], "no model_index.json"),
    (["gen", PROMPT, "--height", "128"], "trained at 64x64 only"),
    (["gen", "a red circle moving left on a navy background", "-m", "moving", "--frames", "13"], "9-frame clips only"),
    (["gen", "a purple dog", "-m", "shapes"], "Unknown word 'dog' in prompt 'a purple dog'. The shapes model knows only"),
    (["gen", "a red circle on a navy background", "-m", "moving"], "Prompts read 'a <colour> <shape> moving"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    if "--device" in args and __import__("torch").cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = run(*args)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    assert not Path("outputs").exists() or not any(Path("outputs").iterdir())


def test_missing_hub_weights_say_how_to_get_them(no_hub_weights):
    result = run("gen", "x", "-m", "flux")
    assert result.exit_code == 2
    assert "`hf download black-forest-labs/FLUX.1-dev`" in result.stderr and "--model-path" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unwritable_output_path():
    Path("blocker").write_text("a file where a folder should be")
    result = run("gen", PROMPT, "--out", "blocker/img.png")
    assert result.exit_code == 2 and "blocker" in result.stderr and "not a folder" in result.stderr


@pytest.mark.parametrize("content, message", [
    ("", "has no prompts"),
    ("# only a comment\n\n", "has no prompts"),
    ('{"prompt": "a", "colour": "red"}\n', ":1: unknown key(s) colour"),
    ('{"prompt": "a", "size": "big"}\n', "size must be"),
    ('a\n{"prompt": "b", "nfe": 99}\n', "99 is not attainable"),
    ("{not json\n", "not valid JSON"),
    (f"{PROMPT}\na purple dog\n", ":2: Unknown word 'dog'"),  # the default model's closed vocabulary
])
def test_bad_prompt_files(tmp_path, content, message):
    path = tmp_path / "p.txt"
    path.write_text(content)
    result = run("batch", str(path), *([] if "dog" in content else TINY))
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_prompt_file():
    result = run("batch", "nope.txt")
    assert result.exit_code == 2 and "Cannot read prompt file 'nope.txt'" in result.stderr


def test_ctrl_c_leaves_no_partial_file(monkeypatch):
    from PIL import Image

    def interrupted_save(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted_save)
    result = run("gen", PROMPT, "--method", "none", "--steps", "2", "--out", "img.png")
    assert result.exit_code == 130 and "Interrupted" in result.stderr
    assert list(Path(".").iterdir()) == []


def test_interrupted_compare_leaves_none_of_its_three_files(monkeypatch):
    """Ctrl-C while --compare's files are written: the set is all or nothing."""
    from PIL import Image

    real_save, calls = Image.Image.save, []

    def second_save_interrupted(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", second_save_interrupted)
    result = run("gen", PROMPT, "--steps", "6", "--nfe", "6", "--warmup", "2", "--compare", "--out", "c.png")
    assert result.exit_code == 130 and "Interrupted" in result.stderr and len(calls) == 2
    assert list(Path(".").iterdir()) == []


def test_non_finite_output_fails_and_writes_nothing(monkeypatch):
    from spectrum_core.app.runner import NonFiniteOutput, Runner

    def overflowing(self, job, on_step=None):
        raise NonFiniteOutput(self.preset.name, "latents", step=3, num_steps=job.steps)

    monkeypatch.setattr(Runner, "generate", overflowing)
    result = run("gen", PROMPT, "--method", "none", "--steps", "4", "--json", "-o", "n.png")
    assert result.exit_code == 1 and result.stdout == "" and len(result.stderr.strip().splitlines()) == 1
    assert "NaN or infinite" in result.stderr and list(Path(".").iterdir()) == []


def test_generation_failure_exits_1_and_debug_shows_traceback(monkeypatch):
    from spectrum_core.app.runner import Runner

    def broken(self, job, on_step=None):
        raise RuntimeError("CUDA error: device-side assert (simulated)")

    monkeypatch.setattr(Runner, "generate", broken)
    result = run("gen", PROMPT, "--method", "none", "--steps", "2")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().endswith("RuntimeError: CUDA error: device-side assert (simulated)")
    monkeypatch.setenv("SPECTRUM_DEBUG", "1")
    debug = run("gen", PROMPT, "--method", "none", "--steps", "2")
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


# --- the installed command, as a real process ---------------------------------------------------

def test_installed_spectrum_command(tmp_path):
    exe = shutil.which("spectrum")
    assert exe, "the `spectrum` console script is not installed (pip install -e .)"
    proc = subprocess.run([exe, "gen", PROMPT, *FAST, "--json"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "SPECTRUM_CACHE": os.environ["SPECTRUM_CACHE"]},
                          timeout=240)
    assert proc.returncode == 0, proc.stderr
    (rec,) = [json.loads(line) for line in proc.stdout.splitlines()]
    assert rec["model"] == DEFAULT_MODEL  # the main job runs on the default model, anywhere
    check_record({**rec, "output": str(tmp_path / rec["output"])}, steps=8)
    assert "real passes (NFE)" in proc.stderr and "Traceback" not in proc.stderr


# --- other model sources ------------------------------------------------------------------------

def test_model_path_and_preset_file(tmp_path):
    from spectrum_core.models.tiny import tiny_pipeline_dir

    folder = tiny_pipeline_dir("flux")
    quick = ["--method", "none", "--steps", "2", "--json"]
    rec = records(run("gen", "x", "-m", "tiny-flux", "--model-path", str(folder), *quick))[0]
    assert rec["model"] == "tiny-flux" and (rec["height"], rec["width"]) == (64, 64)
    preset = tmp_path / "mine.toml"
    preset.write_text(f'source = "{folder}"\npipeline = "FluxPipeline"\nfamily = "flux"\ndtype = "float32"\n'
                      'steps = 4\nheight = 32\nwidth = 48\nguidance = 2.0\n')
    rec = records(run("gen", "x", "--preset-file", str(preset), "--method", "taylor", "--nfe", "3",
                      "--warmup", "2", "--json"))[0]
    assert (rec["model"], rec["steps"], rec["width"], rec["method"], rec["nfe"]) == ("mine", 4, 48, "taylor", 3)
    assert rec["output"].endswith("_taylor-nfe3.png")


def test_model_path_to_a_folder_spectrum_made_uses_its_own_defaults(tmp_path):
    from spectrum_core.models import EMBEDDED_DIR
    from spectrum_core.models.tiny import tiny_pipeline_dir

    rec = records(run("gen", PROMPT, "--model-path", str(EMBEDDED_DIR / "shapes"), "--steps", "4", "--nfe", "3",
                      "--warmup", "2", "--json"))[0]
    assert (rec["model"], rec["height"], rec["width"], rec["guidance"]) == ("shapes", 64, 64, 2.0)
    folder = tmp_path / "mine"
    shutil.copytree(tiny_pipeline_dir("flux"), folder)
    (folder / "spectrum_preset.toml").write_text('pipeline = "FluxPipeline"\nfamily = "flux"\ndtype = "float32"\n'
                                                 'steps = 3\nheight = 32\nwidth = 48\n[spectrum]\nmethod = "none"\n')
    rec = records(run("gen", "x", "--model-path", str(folder), "--json"))[0]
    assert (rec["model"], rec["steps"], rec["height"], rec["width"], rec["method"]) == ("mine", 3, 32, 48, "none")


def test_hub_preset_loads_from_the_local_hf_cache(tmp_path, monkeypatch):
    """A hub id resolves through the Hugging Face cache, offline, like a downloaded model."""
    from huggingface_hub import constants

    from spectrum_core.models.tiny import tiny_pipeline_dir

    hub = tmp_path / "hub"
    snapshot = hub / "models--spectrum-test--tiny-flux" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_pipeline_dir("flux"), snapshot)
    (hub / "models--spectrum-test--tiny-flux" / "refs").mkdir()
    (hub / "models--spectrum-test--tiny-flux" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    preset = tmp_path / "hubbed.toml"
    preset.write_text('source = "spectrum-test/tiny-flux"\npipeline = "FluxPipeline"\nfamily = "flux"\n'
                      'dtype = "float32"\nsteps = 2\nheight = 32\nwidth = 32\n')
    result = run("gen", "x", "--preset-file", str(preset), "--method", "none", "--json")
    assert result.exit_code == 0, result.stderr
    assert Path(records(result)[0]["output"]).is_file()


def test_every_spectrum_config_field_has_a_flag():
    # The CLI's flags map onto SpectrumConfig's names one to one (forecaster is --method).
    import dataclasses

    from spectrum_core import SpectrumConfig

    help_text = run("gen", "--help").output
    for field in dataclasses.fields(SpectrumConfig):
        flag = "--method" if field.name == "forecaster" else "--" + field.name.replace("_", "-")
        assert flag in help_text, flag


def test_explicit_schedule_and_linear_method():
    result = run("gen", PROMPT, "--steps", "20", "--real-steps", "0,1,2,3,4,8,13,19", "--json")
    assert result.exit_code == 0, result.stderr
    (rec,) = records(result)
    assert rec["real_steps"] == [0, 1, 2, 3, 4, 8, 13, 19] and rec["output"].endswith("_cheb-steps8.png")
    linear = records(run("gen", PROMPT, "--steps", "20", "--method", "linear", "--nfe", "8", "--json"))[0]
    assert (linear["method"], linear["nfe"], linear["spectrum"]["forecaster"]) == ("linear", 8, "linear")
    bad = run("gen", PROMPT, "--real-steps", "0,x")
    assert bad.exit_code == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--real-steps" in bad.stderr


def test_uniform_schedule_force_last_and_taylor_order_flags():
    result = run("gen", "a red circle", "-m", "tiny-flux", "--steps", "20", "--method", "taylor",
                 "--taylor-order", "2", "--interval", "4", "--warmup", "3", "--force-last", "--json")
    assert result.exit_code == 0, result.output
    rec = records(result)[0]
    assert rec["real_steps"] == [0, 1, 2, 6, 10, 14, 18, 19]
    assert rec["spectrum"]["taylor_order"] == 2 and rec["spectrum"]["force_last"] is True
    assert rec["output"].endswith("taylor-int4.png")


def test_missing_embedded_model_says_how_to_build_it(tmp_path):
    preset = tmp_path / "later.toml"
    preset.write_text('description = "x"\nsource = "embedded:not-built"\npipeline = "FluxPipeline"\nfamily = "flux"\n')
    result = run("gen", "x", "--preset-file", str(preset))
    assert result.exit_code == 2
    assert "is not in this installation" in result.stderr and "training/README.md" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cpu_threads_from_the_preset_or_the_flag():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert run("gen", PROMPT, "--method", "none", "--steps", "2").exit_code == 0
        assert torch.get_num_threads() == 1  # shapes' preset: cpu_threads = 1
        assert run("gen", PROMPT, "--method", "none", "--steps", "2", "--threads", "2").exit_code == 0
        assert torch.get_num_threads() == 2
        torch.set_num_threads(1)
        assert run("gen", PROMPT, "--method", "none", "--steps", "2", "--threads", "0").exit_code == 0
        assert torch.get_num_threads() == 1  # 0: torch's own setting is left alone (the preset's too)
        bad = run("gen", PROMPT, "--threads", "-1")
        assert bad.exit_code == 2 and "--threads" in bad.output
    finally:
        torch.set_num_threads(before)


# --- the CLI's own behaviour: help, quiet, parse errors, signals, library errors --------------------------

def test_help_shows_defaults_and_no_bool_metavars():
    text = CliRunner().invoke(app, ["gen", "--help"], env={"COLUMNS": "250"}).stdout
    assert text.count("[default: preset]") >= 15 and "[default: 42]" in text and "[default: shapes]" in text
    assert "<bool>" not in text
    for command in ([], ["presets"], ["presets", "show"], ["batch"], ["grid"], ["bench"]):
        assert "<bool>" not in CliRunner().invoke(app, [*command, "--help"]).stdout, command


def test_quiet_prints_nothing_but_writes():
    result = run("-q", "gen", PROMPT, "--method", "none", "--steps", "2", "-o", "q.png")
    assert result.exit_code == 0 and result.stderr == "" and Path("q.png").is_file()
    loud = run("gen", PROMPT, "--method", "none", "--steps", "2", "-o", "l.png")
    assert "wrote" in loud.stderr  # -q does not stick to the next command


def test_prompt_control_characters_are_escaped():
    result = run("gen", "a \x1b[31mred\ncircle", "-m", "shapes")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "\x1b" not in result.stderr and "\\x1b[31mred\\ncircle" in line


def test_largest_seed_runs():
    result = run("gen", PROMPT, "--method", "none", "--steps", "1", "--seed", str(2**64 - 1), "--json")
    assert result.exit_code == 0, result.stderr
    assert records(result)[0]["seed"] == 2**64 - 1


def test_sigterm_is_ctrl_c(monkeypatch, capsys):
    """The entry point turns SIGTERM into Ctrl-C: exit 130, nothing written."""
    import signal
    import sys

    from spectrum_cli.main import main
    from spectrum_core.app.runner import Runner

    def terminated(self, job, on_step=None):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(Runner, "generate", terminated)
    monkeypatch.setattr(sys, "argv", ["spectrum", "gen", PROMPT, "--method", "none", "--steps", "2", "-o", "t.png"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 130 and "Interrupted" in capsys.readouterr().err
    assert list(Path(".").iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # restored


@pytest.mark.parametrize("knobs", [
    {"nfe": 99}, {"nfe": 8, "alpha": 1.0}, {"height": 50}, {"frames": 9}, {"method": "none", "nfe": 8},
    {"blend": 2.0}, {"alpha": float("nan")}, {"seed": -1}, {"steps": 2.5}, {"guidance": float("inf")}, {"bogus": 1},
])
def test_library_errors_carry_data_and_name_no_flag(knobs):
    from spectrum_core import build_job, load_preset
    from spectrum_core.app.request import RequestError

    with pytest.raises(RequestError) as info:
        build_job(load_preset("tiny-flux"), "x", knobs)
    exc = info.value
    assert exc.field in knobs and "--" not in str(exc)


def test_partial_hub_download_is_not_cached(tmp_path, monkeypatch):
    """Only model_index.json in the cache: not "cached", and gen refuses before loading anything."""
    from huggingface_hub import constants

    from spectrum_core.models.tiny import tiny_pipeline_dir

    repo = tmp_path / "hub" / "models--spectrum-test--tiny-flux"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    shutil.copy(tiny_pipeline_dir("flux") / "model_index.json", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    preset = tmp_path / "hubbed.toml"
    preset.write_text('source = "spectrum-test/tiny-flux"\npipeline = "FluxPipeline"\nfamily = "flux"\n'
                      'dtype = "float32"\nsteps = 2\nheight = 32\nwidth = 32\n')
    result = run("gen", "x", "--preset-file", str(preset), "--method", "none")
    assert result.exit_code == 2 and "only partly downloaded" in result.stderr
    assert "`hf download spectrum-test/tiny-flux`" in result.stderr


# --- runtime options: LoRA, compile, offload, forecaster state, context parallelism ---------------------

@pytest.mark.parametrize("args, message", [
    (["--compile", "fast"], "Unknown --compile 'fast'. Choose from: regional, full."),
    (["--offload-mode", "disk"], "Unknown --offload mode 'disk'. Choose from: model, sequential, group."),
    (["--offload-mode", "model"], "--offload moves weights between CPU and an accelerator; it needs --device cuda"),
    (["--forecast-state", "gpu"], "Unknown --forecast-state 'gpu'. Choose from: device, cpu."),
    (["--lora", "nope.safetensors"], "--lora nope.safetensors: no such file or folder"),
    (["--lora", "adapter.bin"], "--lora adapter.bin: not a .safetensors file"),
    (["--lora", "adapter.safetensors:nan"], "--lora scale for adapter.safetensors must be a finite number"),
    (["--lora", "."], "a folder without pytorch_lora_weights.safetensors"),
    (["--context-parallel", "ulysses:2"], "--context-parallel ulysses:2 needs torchrun with 2 processes"),
    (["--context-parallel", "stripes:2"], "context parallelism is one of"),
    (["--context-parallel", "ulysses"], "context parallelism reads KIND:N"),
])
def test_bad_runtime_options_are_refused_before_loading(args, message, no_loading):
    Path("adapter.bin").write_bytes(b"x")
    Path("adapter.safetensors").write_bytes(b"x")
    result = run("gen", "x", *TINY, "--device", "cpu", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert result.stdout == "" and not Path("outputs").exists()


def test_context_parallel_needs_cuda_before_loading(monkeypatch, no_loading):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    result = run("gen", "x", *TINY, "--device", "cpu", "--context-parallel", "ring:2")
    assert result.exit_code == 2 and "context parallelism needs CUDA devices" in result.stderr, result.output
    result = run("gen", "x", *TINY, "--device", "cpu", "--context-parallel", "ring:3")
    assert result.exit_code == 2 and "needs a world size divisible by 3" in result.stderr, result.output


def test_runtime_options_reach_the_runner(monkeypatch, no_loading):
    from spectrum_core.app import runner as runner_mod

    seen = {}
    real_init = runner_mod.Runner.__init__

    def spy(self, *a, **k):
        seen.update(k)
        real_init(self, *a, **k)

    monkeypatch.setattr(runner_mod.Runner, "__init__", spy)
    Path("a.safetensors").write_bytes(b"x")
    Path("b").mkdir()
    Path("b/pytorch_lora_weights.safetensors").write_bytes(b"x")
    result = run("gen", "x", *TINY, "--device", "cpu", "--lora", "a.safetensors:0.5", "--lora", "b",
                 "--compile", "regional", "--offload-mode", "group", "--forecast-state", "cpu")
    assert result.exit_code == 1 and "a model was loaded" in result.stderr  # got as far as loading
    assert seen["lora"] == [("a.safetensors", 0.5), ("b", 1.0)]
    assert (seen["compile"], seen["offload"], seen["forecast_state"]) == ("regional", "group", "cpu")


def test_group_offload_and_host_forecast_state_run_and_are_reported():
    base = records(run("gen", PROMPT, *FAST, "--device", "cpu", "-o", "a.png", "--json"))[0]
    result = run("gen", PROMPT, *FAST, "--device", "cpu", "-o", "b.png", "--json", "--offload-mode", "group",
                 "--forecast-state", "cpu")
    assert result.exit_code == 0, result.output
    rec = records(result)[0]
    assert base["forecaster_state_bytes"] == rec["forecaster_state_bytes"] > 0
    assert rec["forecaster_state_device"] == "cpu" and rec["forecaster_state_bytes"] > 0
    assert rec["peak_memory_bytes"] is None and rec["batch_size"] == 1  # CPU: no device peak to report
    assert "forecaster state" in result.stderr
    assert rec["nfe"] == base["nfe"] == 6
    from PIL import Image

    assert Image.open("a.png").tobytes() == Image.open("b.png").tobytes()  # group offload: same pixels
