"""Fault injection through the real command line: each test starts `python -m spectrum_cli` in a
subprocess and breaks something — a file-size limit (`ulimit -f`), SIGINT/SIGTERM at a set point,
corrupted weights, non-finite guidance, a race for one name, hostile batch files — and checks what the
user is told (exit code, one line, no "wrote") and what is left on disk (the output whole or absent,
no temporary files). Also the tiny-model cache under interrupts and concurrent builders.

Set points are reached by a small wrapper around the CLI (`_run_cli_with`): it patches one function in
the child process to print a marker (and optionally send the signal itself) before delegating to the
real code, so the signal arrives exactly where the test means it to, not "some time later".
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHAPES = ["-m", "shapes", "--steps", "4", "--seed", "1"]
MOVING = ["-m", "moving", "--steps", "4", "--seed", "1"]
CIRCLE = "a red circle on a navy background"
CLIP = "a red circle moving left on a navy background"


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT), SPECTRUM_HOME=str(tmp_path / "home"),
               SPECTRUM_CACHE=str(tmp_path / "cache"), NO_COLOR="1", COLUMNS="200")
    return env


def _default_signals(fsize: int | None = None):
    """preexec_fn: Ctrl-C as a fresh terminal would have it (a test runner started in the background has
    SIGINT ignored, and a child inherits that), and optionally a file-size limit (`ulimit -f`)."""

    def setup() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as a write past the limit: EFBIG, not a kill
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return setup


def run_cli(tmp_path, *args, fsize=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "spectrum_cli", *map(str, args)], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_default_signals(fsize))


# The child's wrapper: patch `target` (module:attribute) so that its call prints MARK to stderr, then
# optionally raises the signal in the process itself, then runs the real function.
_WRAPPER = textwrap.dedent("""
    import importlib, os, runpy, signal, sys, time
    module_name, attr = os.environ["FAULT_TARGET"].split(":")
    send = os.environ.get("FAULT_SIGNAL")
    after = int(os.environ.get("FAULT_AFTER", "1"))
    owner_path, _, name = attr.rpartition(".")
    owner = importlib.import_module(module_name)
    for part in filter(None, owner_path.split(".")):
        owner = getattr(owner, part)
    real = getattr(owner, name)
    calls = [0]
    def patched(*args, **kwargs):
        calls[0] += 1
        if calls[0] == after:
            print("FAULT-POINT", file=sys.stderr, flush=True)
            if send:
                os.kill(os.getpid(), getattr(signal, send))
                time.sleep(5)  # the signal is handled here; never reached when it raises
        return real(*args, **kwargs)
    setattr(owner, name, patched)
    sys.argv = ["spectrum", *sys.argv[1:]]
    runpy.run_module("spectrum_cli", run_name="__main__", alter_sys=True)
""")


def _run_cli_with(tmp_path, target, signame, *args, after=1, timeout=120):
    env = {**_env(tmp_path), "FAULT_TARGET": target, "FAULT_SIGNAL": signame, "FAULT_AFTER": str(after)}
    return subprocess.run([sys.executable, "-c", _WRAPPER, *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=_default_signals())


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "home" not in p.parts
                  and "cache" not in p.parts)


def _one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "wrote" not in result.stdout + result.stderr
    return lines[0]


# --- disk limits ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, args, limit", [
    ("a.png", [CIRCLE, *SHAPES], 2048),   # the PNG is ~3.7 KB
    ("v/clip.mp4", [CLIP, *MOVING], 2048),  # the MP4 is ~2.5 KB, its sidecar ~1 KB: cut inside the MP4
    ("v/clip.mp4", [CLIP, *MOVING], 4096),  # the MP4 fits, the sidecar does not... or both: whole or absent
])
def test_file_size_limit_leaves_nothing_and_says_so(tmp_path, name, args, limit):
    (tmp_path / "v").mkdir()
    result = run_cli(tmp_path, "gen", *args, "-o", name, fsize=limit)
    if result.returncode == 0:  # everything fitted under this limit: then all of it must be whole
        assert name.endswith(".mp4")
        assert _files(tmp_path) == ["v/clip.json", "v/clip.mp4"]
        return
    assert result.returncode == 1, result.stderr
    line = _one_error_line(result)
    assert "not written" in line or "File too large" in line, line
    assert _files(tmp_path) == [], "a partial output or a temporary file was left"


# --- signals at set points -----------------------------------------------------------------------------

# where: the scheduler's third step (the model is loaded and generating), and the moment ffmpeg has written
# the whole temporary MP4 and it is read back (the worst time for a .part file)
@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("point, args, after", [
    ("diffusers:FlowMatchEulerDiscreteScheduler.step", ("gen", CIRCLE, *SHAPES, "-o", "a.png"), 3),
    ("imageio_ffmpeg:read_frames", ("gen", CLIP, *MOVING, "-o", "c.mp4"), 1),
], ids=["mid-generation", "mp4-encode"])
def test_a_signal_exits_130_and_leaves_nothing(tmp_path, signame, point, args, after):
    result = _run_cli_with(tmp_path, point, signame, *args, after=after)
    assert "FAULT-POINT" in result.stderr
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr and "wrote" not in result.stdout
    assert _files(tmp_path) == []


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_during_a_tiny_build_leaves_no_cache_entry(tmp_path, signame):
    result = _run_cli_with(tmp_path, "spectrum_core.models.tiny:build_tiny_pipeline", signame,
                           "gen", "a cat", "-m", "tiny-flux", "--steps", "4", "-o", "t.png")
    assert "FAULT-POINT" in result.stderr
    assert result.returncode == 130, result.stderr
    cache = tmp_path / "cache" / "tiny"
    assert not cache.exists() or list(cache.iterdir()) == []
    assert _files(tmp_path) == []


# --- corrupted weights and non-finite guidance ---------------------------------------------------------

def _corrupt_copy(tmp_path: Path) -> Path:
    import shutil

    from safetensors.torch import load_file, save_file

    from spectrum_core.models import EMBEDDED_DIR

    folder = tmp_path / "weights" / "shapes"
    shutil.copytree(EMBEDDED_DIR / "shapes", folder)
    path = next((folder / "transformer").glob("*.safetensors"))
    tensors = load_file(path)
    key = next(k for k in sorted(tensors) if k.endswith("weight") and tensors[k].ndim == 2)
    tensors[key][0, 0] = float("nan")
    save_file(tensors, path, metadata={"format": "pt"})
    return folder


def test_corrupted_weights_fail_in_one_line_and_write_nothing(tmp_path):
    folder = _corrupt_copy(tmp_path)
    result = run_cli(tmp_path, "gen", CIRCLE, "--model-path", folder, "-m", "shapes", "--steps", "4", "-o", "a.png")
    assert result.returncode == 1, result.stderr
    line = _one_error_line(result)
    assert "NaN" in line or "non-finite" in line or "infinite" in line, line
    assert _files(tmp_path) == [] or all(p.startswith("weights/") for p in _files(tmp_path))
    assert not (tmp_path / "a.png").exists()


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400"])
def test_non_finite_guidance_is_refused_before_loading(tmp_path, value):
    result = run_cli(tmp_path, "gen", CIRCLE, *SHAPES, "--guidance", value, "-o", "a.png", "--json")
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert "--guidance" in line, line
    assert "NaN" not in result.stdout and "Infinity" not in result.stdout
    assert _files(tmp_path) == []


# --- concurrent runs -----------------------------------------------------------------------------------

def test_two_runs_racing_for_one_default_name_both_succeed(tmp_path):
    args = [sys.executable, "-m", "spectrum_cli", "gen", CIRCLE, *SHAPES, "-o", "out/"]
    (tmp_path / "out").mkdir()
    procs = [subprocess.Popen(args, cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals()) for _ in range(2)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert [r[0] for r in results] == [0, 0], [r[2] for r in results]
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(written) == 2 and all(n.endswith(".png") for n in written), written
    assert len({(tmp_path / "out" / n).read_bytes() for n in written}) == 1  # the same image, two names


def test_concurrent_tiny_builders_make_one_whole_entry(tmp_path):
    code = ("import sys; from spectrum_core.models.tiny import tiny_pipeline_dir; "
            "print(tiny_pipeline_dir('flux', cache_dir=sys.argv[1]))")
    procs = [subprocess.Popen([sys.executable, "-c", code, tmp_path], env=_env(tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [o[1] for o in outs]
    assert len({o[0].strip() for o in outs}) == 1
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["flux-v1"]  # no staging leftovers
    entry = tmp_path / "tiny" / "flux-v1"
    assert (entry / "model_index.json").is_file() and (entry / "spectrum_call.json").is_file()
    assert not [p for p in entry.rglob(".*")]


# --- tiny cache: interrupts and leftovers, in process ----------------------------------------------------

def test_interrupted_tiny_build_leaves_no_entry(tmp_path, monkeypatch):
    from spectrum_core.models import tiny

    real_build = tiny.build_tiny_pipeline

    def build_then_interrupt_mid_save(family, seed=0):
        pipe = real_build(family, seed)
        real_save = pipe.save_pretrained

        def save(folder, **kwargs):
            real_save(folder, **kwargs)
            (Path(folder) / "transformer" / "diffusion_pytorch_model.safetensors").write_bytes(b"half")
            raise KeyboardInterrupt

        pipe.save_pretrained = save
        return pipe

    monkeypatch.setattr(tiny, "build_tiny_pipeline", build_then_interrupt_mid_save)
    with pytest.raises(KeyboardInterrupt):
        tiny.tiny_pipeline_dir("flux", cache_dir=tmp_path)
    assert list((tmp_path / "tiny").iterdir()) == []


def test_an_incomplete_entry_is_replaced_and_an_old_entry_gets_its_call_defaults(tmp_path):
    from spectrum_core.models import tiny
    from spectrum_core.models.call_defaults import read_call_defaults

    half = tmp_path / "tiny" / "flux-v1"
    (half / "transformer").mkdir(parents=True)
    (half / "transformer" / "config.json").write_text("{")  # a half-built entry of an older, non-atomic build
    assert tiny.tiny_pipeline_dir("flux", cache_dir=tmp_path) == half
    assert (half / "model_index.json").is_file() and json.loads((half / "transformer" / "config.json").read_text())
    assert sorted(p.name for p in half.parent.iterdir()) == ["flux-v1"]
    (half / "spectrum_call.json").unlink()  # an entry made before the file existed
    tiny.tiny_pipeline_dir("flux", cache_dir=tmp_path)
    doc = read_call_defaults(half)
    assert doc["call"] == {"num_inference_steps": 50, **tiny.TINY_CALL_KWARGS["flux"]} and doc["kind"] == "image"
    assert not [p for p in half.iterdir() if p.name.startswith(".")]


# --- hostile batch files -------------------------------------------------------------------------------

@pytest.mark.parametrize("content, needle", [
    ('{"prompt": "%s", "out": "../escape.png"}\n' % CIRCLE, "outside"),
    ('{"prompt": "%s", "out": "/tmp/spectrum-escape-test.png"}\n' % CIRCLE, "outside"),
    ('{"prompt": "%s", "seed": "abc"}\n' % CIRCLE, "seed"),
    ('{"prompt": "%s", "guidance": "x"}\n' % CIRCLE, "guidance"),
    ('{"prompt": 3}\n', "prompt"),
    ('{"prompt": "%s", "out": 3}\n' % CIRCLE, "out"),
    ('{"prompt": "%s", "nfe": 14.5}\n' % CIRCLE, "nfe"),
    ('{"prompt": "%s", "guidance": NaN}\n' % CIRCLE, ""),
    ('{"prompt": "%s", "out": "x.png"}\n{"prompt": "%s", "out": "x.png"}\n' % (CIRCLE, CIRCLE), "x.png"),
    (b'a red circle on a navy background\n\xff\xfe broken\n', "UTF-8"),
])
def test_hostile_batch_lines_are_refused_before_anything_runs(tmp_path, content, needle):
    prompts = tmp_path / "p.jsonl"
    prompts.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = run_cli(tmp_path, "batch", prompts, *SHAPES, "-o", "out")
    assert result.returncode == 2, result.stderr
    line = _one_error_line(result)
    assert needle in line and ":" in line, line
    assert not (tmp_path / "escape.png").exists() and not Path("/tmp/spectrum-escape-test.png").exists()
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []


def test_a_byte_order_mark_is_not_part_of_the_first_prompt(tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_bytes(b"\xef\xbb\xbf" + CIRCLE.encode() + b"\n")
    result = run_cli(tmp_path, "batch", prompts, *SHAPES, "-o", "out", "--json")
    assert result.returncode == 0, result.stderr
    manifest = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(manifest) == 1 and manifest[0]["prompt"] == CIRCLE


# --- no NaN or Infinity in anything written as JSON -----------------------------------------------------

def test_json_output_is_strict_json(tmp_path):
    result = run_cli(tmp_path, "gen", CIRCLE, *SHAPES, "-o", "a.png", "--json")
    assert result.returncode == 0, result.stderr

    def refuse(name):
        raise AssertionError(f"{name} in --json output")

    json.loads(result.stdout, parse_constant=refuse)
    from spectrum_core.app.media import read_png_metadata

    json.dumps(read_png_metadata(tmp_path / "a.png"), allow_nan=False)


# --- the library: non-finite values never reach a file ---------------------------------------------------

def _shapes_runner(model_dir=None):
    from spectrum_core.app.presets import load_preset, preset_for_model_dir
    from spectrum_core.app.runner import Runner

    preset = load_preset("shapes")
    if model_dir is not None:
        preset = preset_for_model_dir(model_dir, base=preset)
    return preset, Runner(preset, device="cpu")


def test_runner_refuses_nan_latents_from_corrupted_weights(tmp_path):
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import NonFiniteOutput

    preset, runner = _shapes_runner(_corrupt_copy(tmp_path))
    steps_seen = []
    with pytest.raises(NonFiniteOutput, match="latents") as info:
        runner.generate(build_job(preset, CIRCLE, steps=4, method="none"), on_step=steps_seen.append)
    assert steps_seen == []  # caught at the first step, before anything downstream saw it
    assert "nan" not in str(info.value).lower() or "NaN" in str(info.value)


def test_runner_refuses_a_non_finite_decoded_image(tmp_path):
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import NonFiniteOutput

    preset, runner = _shapes_runner()
    vae = runner.pipe.vae
    real_decode = vae.decode

    def decode_to_inf(latents, *args, **kwargs):
        out = real_decode(latents, *args, **kwargs)
        # the pipelines call decode(..., return_dict=False): a tuple whose first item is the image
        image = out[0] if isinstance(out, tuple) else out.sample
        # finite latents, a decoder producing NaN (an infinity would be clamped to white by the
        # pipeline's post-processing: a valid image, not a broken one)
        image[:, :, :2] = float("nan")
        return out

    vae.decode = decode_to_inf
    try:
        with pytest.raises(NonFiniteOutput, match="image"):
            runner.generate(build_job(preset, CIRCLE, steps=4, method="none"))
    finally:
        del vae.decode
    assert list(tmp_path.iterdir()) == []


def test_library_json_writers_refuse_nan_and_infinity(tmp_path):
    from spectrum_core.app import media

    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError):
            media.save_json(tmp_path / "r.json", {"psnr": bad})
        with pytest.raises(ValueError):
            media.append_line(tmp_path / "m.jsonl", media.dumps({"psnr": bad}))
        with pytest.raises(ValueError):
            media.save_mp4(tmp_path / "v.mp4", np.zeros((3, 16, 16, 3), dtype=np.uint8), 8, {"psnr": bad})
    assert list(tmp_path.iterdir()) == []


# --- apply_spectrum does not stack on a diffusers cache ----------------------------------------------------

@pytest.mark.parametrize("cache", ["FirstBlockCacheConfig", "TaylorSeerCacheConfig"])
def test_apply_spectrum_refuses_a_pipeline_with_a_diffusers_cache(tiny_pipes, cache):
    import diffusers

    from spectrum_core.hooks.spectrum import apply_spectrum

    pipe = tiny_pipes("flux")
    config = getattr(diffusers, cache)(**({"threshold": 0.2} if cache == "FirstBlockCacheConfig" else {}))
    pipe.transformer.enable_cache(config)
    try:
        with pytest.raises(RuntimeError, match=f"pipe.transformer already has a diffusers cache enabled \\({cache}\\)"):
            apply_spectrum(pipe)
    finally:
        pipe.transformer.disable_cache()
    apply_spectrum(pipe).remove()  # without the cache it applies (and removes) as usual


def test_a_diffusers_cache_enabled_after_apply_spectrum_is_refused_at_the_call(tiny_pipes):
    import diffusers

    from spectrum_core.hooks.spectrum import apply_spectrum

    from conftest import generate

    pipe = tiny_pipes("flux")
    handle = apply_spectrum(pipe, nfe=4)
    pipe.transformer.enable_cache(diffusers.FirstBlockCacheConfig(threshold=0.2))
    try:
        with pytest.raises(RuntimeError, match=r"a diffusers cache \(FirstBlockCacheConfig\) was enabled .* after apply_spectrum"):
            generate(pipe, "flux", 6)
    finally:
        pipe.transformer.disable_cache()
        handle.remove()


# --- a signal that lands inside a finalizer is not swallowed ------------------------------------------------

class _SignalsInItsFinalizer:
    """An object whose `__del__` receives `signum` (and sleeps, as a slow finalizer would, so the handler
    runs inside the finalizer): Python reports the handler's exception as "ignored" there."""

    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)
        time.sleep(0.2)


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_a_signal_inside_a_finalizer_is_delivered_after_it(signame):
    from spectrum_core.app.signals import Terminated, sigterm_as_interrupt

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    hook = sys.unraisablehook
    try:
        expected = Terminated if signame == "SIGTERM" else KeyboardInterrupt
        with sigterm_as_interrupt():
            with pytest.raises(expected):
                obj = _SignalsInItsFinalizer(getattr(signal, signame))
                del obj  # the handler raises inside __del__: without the fix it is ignored here
                for _ in range(200):  # ... and this loop would run to its end
                    time.sleep(0.005)
        assert sys.unraisablehook is hook  # restored on exit
    finally:
        signal.signal(signal.SIGINT, previous_int)


def test_sigterm_inside_a_finalizer_ends_the_process(tmp_path):
    code = (
        "import os, signal, sys, time\n"
        "from spectrum_core.app.signals import sigterm_as_interrupt\n"
        "class Slow:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM); time.sleep(0.2)\n"
        "try:\n"
        "    with sigterm_as_interrupt():\n"
        "        obj = Slow(); del obj\n"
        "        time.sleep(3); print('kept running')\n"
        "except KeyboardInterrupt as exc:\n"
        "    print('unwound:', exc); sys.exit(143)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 143, (proc.stdout, proc.stderr)
    assert "unwound: terminated by signal SIGTERM" in proc.stdout
    assert "kept running" not in proc.stdout and "Exception ignored" not in proc.stderr
