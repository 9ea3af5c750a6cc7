"""What users stack on a pipeline, with Spectrum on: LoRA, torch.compile, offloading, batches, state memory.

Each test builds its own tiny pipeline (LoRA, compilation and offloading change the pipeline they are
applied to, so the session's shared pipelines stay untouched) from the session's cached tiny folders.
What cannot run on a CPU-only machine (sequential offload, CUDA streams, inductor on a GPU, peak device
memory) is checked by ``python -m spectrum_core.bench.stack_checks --device cuda``, whose CPU part runs here.
"""

import math

import numpy as np
import pytest
import torch

from conftest import generate, psnr
from spectrum_core import SpectrumConfig, apply_spectrum
from spectrum_core.hooks.families import blocks, family_for
from spectrum_core.method.forecasters import ChebyshevForecaster
from spectrum_core.models.tiny import TINY_CALL_KWARGS, load_tiny_pipeline

STEPS = 12
NFE = 8
CONFIG = SpectrumConfig(nfe=NFE, blend=0.5)
FAMILIES = ["flux", "wan"]  # an image family with one call per step, a video family with two CFG calls


@pytest.fixture
def fresh(tiny_cache):
    def load(family):
        pipe = load_tiny_pipeline(family, cache_dir=tiny_cache)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    return load


def spectrum_run(pipe, family, config=CONFIG, **kwargs):
    with apply_spectrum(pipe, config, **kwargs) as handle:
        out = generate(pipe, family, STEPS)
        stats = handle.stats
    return out, stats


def expected_nfe(stats, family):
    branches = 2 if family == "wan" else 1
    assert stats.nfe == NFE
    assert sum(stats.nfe_by_branch.values()) == NFE * branches


# ------------------------------------------------------------------------------------------------------
# 1. LoRA
# ------------------------------------------------------------------------------------------------------


def make_lora(pipe, path, seed=1, std=1.0):
    """A random rank-4 LoRA on the attention projections of ``pipe.transformer``, saved the way trainers
    save theirs (``save_lora_weights``), then taken off again."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    transformer = pipe.transformer
    transformer.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v"],
                                       init_lora_weights="gaussian"), adapter_name="made")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    type(pipe).save_lora_weights(str(path), transformer_lora_layers=get_peft_model_state_dict(transformer, adapter_name="made"))
    transformer.delete_adapters("made")
    return path


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_with_spectrum_on_and_removed(family, fresh, tmp_path):
    pipe = fresh(family)
    base = generate(pipe, family, STEPS)
    make_lora(pipe, tmp_path / "lora")
    assert np.array_equal(generate(pipe, family, STEPS), base)  # the adapter made for saving is gone
    pipe.load_lora_weights(str(tmp_path / "lora"), adapter_name="style")
    lora = generate(pipe, family, STEPS)  # diffusers' own LoRA'd output
    assert psnr(lora, base) < 35  # the LoRA changes the output clearly (27 dB FLUX, 21 dB Wan)

    hooked, stats = spectrum_run(pipe, family)
    expected_nfe(stats, family)
    assert np.isfinite(hooked).all()
    # Spectrum follows the LoRA'd trajectory: far closer to it than to the output without the LoRA.
    assert psnr(hooked, lora) > 40  # measured 51 dB FLUX, 49 dB Wan
    assert psnr(hooked, lora) > psnr(hooked, base) + 15
    assert np.array_equal(generate(pipe, family, STEPS), lora)  # removed: diffusers' output, bit for bit


def test_runner_loads_loras_with_their_scales(tmp_path, tiny_cache, monkeypatch, fresh):
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import RequestError, build_job
    from spectrum_core.app.runner import Runner

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    path = make_lora(fresh("flux"), tmp_path / "lora")
    preset = load_preset("tiny-flux")
    job = build_job(preset, "a cat", {"seed": 3, "steps": STEPS, "nfe": NFE})
    plain = np.asarray(Runner(preset, device="cpu").generate(job).media)
    zero = Runner(preset, device="cpu", lora=[(str(path), 0.0)]).generate(job)
    full = Runner(preset, device="cpu", lora=[(str(path / "pytorch_lora_weights.safetensors"), 1.0)]).generate(job)
    assert zero.nfe == full.nfe == NFE
    assert np.array_equal(np.asarray(zero.media), plain)  # scale 0: the LoRA adds exactly nothing
    assert not np.array_equal(np.asarray(full.media), plain)
    with pytest.raises(RequestError) as missing:  # before any model loads
        Runner(preset, device="cpu", lora=[(str(tmp_path / "nope.safetensors"), 1.0)])
    assert missing.value.field == "lora"
    with pytest.raises(RequestError):
        Runner(preset, device="cpu", lora=[(str(path), math.nan)])


def test_batch_lines_carry_their_own_loras(tmp_path, tiny_cache, monkeypatch, fresh):
    """A batch line's "lora" list is checked with its line number before loading; lines with different LoRA
    sets never share a call; between them the runner unloads and loads through diffusers, so each line gets
    what a runner loaded with that set alone makes, and a line without LoRA what a plain runner makes."""
    from spectrum_core.app import batch
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.runner import Runner, group_jobs

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    path = make_lora(fresh("flux"), tmp_path / "lora") / "pytorch_lora_weights.safetensors"
    preset = load_preset("tiny-flux")
    knobs = {"seed": 3, "steps": STEPS, "nfe": NFE}
    bad = tmp_path / "bad.txt"
    for line, message in ((f'{{"prompt": "a cat", "lora": ["{tmp_path}/nope.safetensors"]}}', "no such file"),
                          ('{"prompt": "a cat", "lora": "x.safetensors"}', "must be a list"),
                          (f'{{"prompt": "a cat", "lora": ["{path}:big"]}}', "no such file")):
        bad.write_text("a dog\n" + line + "\n")
        with pytest.raises(batch.BatchError, match=f"bad.txt:2: .*{message}"):
            batch.read_batch(bad, preset, knobs)
    good = tmp_path / "good.txt"
    good.write_text(f'a cat\n{{"prompt": "a cat", "lora": ["{path}:0.7"]}}\n{{"prompt": "a dog", "lora": []}}\n')
    items = batch.read_batch(good, preset, knobs)
    assert [item.job.lora for item in items] == [None, ((str(path), 0.7),), ()]
    jobs = [item.job for item in items]
    assert group_jobs(jobs, 3) == [[0], [1], [2]]  # three LoRA sets (the runner's, one, none): three calls
    runner = Runner(preset, device="cpu")
    made = [np.asarray(runner.generate(job).media) for job in jobs] + [np.asarray(runner.generate(jobs[0]).media)]
    alone = Runner(preset, device="cpu", lora=[(str(path), 0.7)]).generate(jobs[0])
    plain = Runner(preset, device="cpu")
    assert np.array_equal(made[1], np.asarray(alone.media))  # loaded between lines = loaded at start
    assert np.array_equal(made[0], np.asarray(plain.generate(jobs[0]).media))
    assert np.array_equal(made[3], made[0])  # unloaded again: bit for bit the LoRA-free output
    assert np.array_equal(made[2], np.asarray(plain.generate(jobs[2]).media))
    assert not np.array_equal(made[1], made[0])


# ------------------------------------------------------------------------------------------------------
# 2. torch.compile
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family,how", [("flux", "regional"), ("flux", "full"), ("wan", "regional")])
def test_compile_gives_the_eager_output_without_recompiling(family, how, fresh):
    from torch._dynamo.testing import CompileCounterWithBackend

    pipe = fresh(family)
    eager, _ = spectrum_run(pipe, family)
    # inductor's C++ builds take minutes on a CPU runner; dynamo's graphs and guards are the same
    counter = CompileCounterWithBackend("aot_eager" if how == "regional" else "eager")
    torch._dynamo.reset()
    try:
        if how == "regional":
            pipe.transformer.compile_repeated_blocks(backend=counter, fullgraph=True)
        else:
            pipe.transformer.compile(backend=counter)
        if how == "regional":  # blocks' graphs survive a new handle (Runner applies one per call)
            first, stats = spectrum_run(pipe, family)
            frames = counter.frame_count
            second, _ = spectrum_run(pipe, family)
        else:  # whole-model graphs are guarded on the hooks: a new handle compiles 2 frames again, once
            with apply_spectrum(pipe, CONFIG) as handle:
                first = generate(pipe, family, STEPS)
                stats = handle.stats
                frames = counter.frame_count
                second = generate(pipe, family, STEPS)
        if how == "regional":  # another step count and schedule reuses the same block graphs
            with apply_spectrum(pipe, SpectrumConfig(nfe=NFE + 4, blend=0.5)):
                assert np.isfinite(generate(pipe, family, 2 * STEPS)).all()
    finally:
        torch._dynamo.reset()
    expected_nfe(stats, family)
    np.testing.assert_allclose(first, eager, rtol=0, atol=1e-5 * np.abs(eager).max())
    assert np.array_equal(first, second)
    assert frames > 0
    assert counter.frame_count == frames  # nothing compiled again after the first call (regional: any step count)
    if how == "regional":  # each repeated block class twice at most: computed, skipped
        assert frames <= 2 * len(pipe.transformer._repeated_blocks)


# ------------------------------------------------------------------------------------------------------
# 3. Offloading (what a CPU-only machine can run: group offloading with CPU onload, model offload to cpu)
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family,how", [("flux", "block_level"), ("flux", "leaf_level"), ("wan", "block_level"),
                                        ("flux", "model")])
def test_offloading_keeps_the_output(family, how, fresh):
    pipe = fresh(family)
    reference, _ = spectrum_run(pipe, family)
    full = generate(pipe, family, STEPS)
    if how == "model":
        pipe.enable_model_cpu_offload(device="cpu")
    else:
        from diffusers.hooks import apply_group_offloading

        apply_group_offloading(pipe.transformer, onload_device=torch.device("cpu"), offload_type=how,
                               num_blocks_per_group=1 if how == "block_level" else None)
    offloaded = generate(pipe, family, STEPS)  # the plain pipeline, offloaded
    hooked, stats = spectrum_run(pipe, family)
    expected_nfe(stats, family)
    assert stats.forecaster_state_device == "cpu"  # where the head ran
    assert np.array_equal(generate(pipe, family, STEPS), offloaded)  # removing the hooks: the offloaded output
    if np.array_equal(offloaded, full):  # offloading changes nothing: neither may Spectrum under it
        assert np.array_equal(hooked, reference)
    else:  # model offload runs on "cpu:0" and some stacks round differently there (seen: 5e-7 with
        # accelerate 1.16 / transformers 5.25): Spectrum under offload may differ from Spectrum without by
        # what offloading itself changes, no more
        drift = np.abs(offloaded - full).max()
        assert np.abs(hooked - reference).max() <= 100 * drift <= 1e-4 * np.abs(full).max()


@pytest.mark.parametrize("family", FAMILIES)
def test_forecast_state_on_the_host(family, tiny_pipes):
    pipe = tiny_pipes(family)
    on_device, stats = spectrum_run(pipe, family)
    on_host, host_stats = spectrum_run(pipe, family, forecast_state="cpu")
    assert np.array_equal(on_host, on_device)
    assert host_stats.forecaster_state_device == "cpu"
    assert host_stats.forecaster_state_bytes == stats.forecaster_state_bytes > 0
    with pytest.raises(ValueError, match="forecast_state"):
        apply_spectrum(pipe, CONFIG, forecast_state="disk")


def test_runner_offload_and_compile_choices(tiny_cache, monkeypatch):
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import RequestError, build_job
    from spectrum_core.app.runner import Runner

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    preset = load_preset("tiny-flux")
    job = build_job(preset, "a cat", {"seed": 3, "steps": STEPS, "nfe": NFE})
    plain = Runner(preset, device="cpu").generate(job)
    grouped = Runner(preset, device="cpu", offload="group").generate(job)
    assert grouped.nfe == NFE
    assert np.array_equal(np.asarray(grouped.media), np.asarray(plain.media))
    for bad in ({"offload": "model"}, {"offload": "disk"}, {"compile": "max"}, {"forecast_state": "gpu"}):
        with pytest.raises(RequestError) as err:
            Runner(preset, device="cpu", **bad)
        assert err.value.field == next(iter(bad))


# ------------------------------------------------------------------------------------------------------
# 4. Batches
# ------------------------------------------------------------------------------------------------------


def seeded_call(pipe, family, prompts, seeds, per_prompt=1):
    key = "num_videos_per_prompt" if family == "wan" else "num_images_per_prompt"
    out = pipe(prompt=prompts, num_inference_steps=STEPS, output_type="latent",
               generator=[torch.Generator().manual_seed(s) for s in seeds], **{key: per_prompt},
               **TINY_CALL_KWARGS[family])
    out = out.frames if hasattr(out, "frames") else out.images
    return out.detach().to(torch.float64).numpy()


@pytest.mark.parametrize("family", FAMILIES)
def test_batched_calls_give_each_sample_its_own_forecast(family, tiny_pipes):
    pipe = tiny_pipes(family)
    prompts = ["a red circle on a navy background", "a green square on a white background"]
    with apply_spectrum(pipe, CONFIG) as handle:
        alone = [seeded_call(pipe, family, [p], [s])[0] for p, s in zip(prompts, (1, 2))]
        third = seeded_call(pipe, family, [prompts[0]], [3])[0]
        batch = seeded_call(pipe, family, prompts, [1, 2])
        expected_nfe(handle.stats, family)
        repeated = seeded_call(pipe, family, [prompts[0]], [1, 3], per_prompt=2)
        expected_nfe(handle.stats, family)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)
    for got, want in ((batch[0], alone[0]), (batch[1], alone[1]), (repeated[0], alone[0]), (repeated[1], third)):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


def test_runner_batches_compatible_jobs(tiny_cache, monkeypatch):
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import Runner, group_jobs

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    preset = load_preset("tiny-flux")
    knobs = {"steps": STEPS, "nfe": NFE}
    jobs = [build_job(preset, p, {**knobs, "seed": s}) for p, s in (("a cat", 1), ("a dog", 2), ("a cow", 3))]
    jobs.insert(1, build_job(preset, "a cat", {**knobs, "seed": 1, "nfe": NFE + 1}))  # another schedule
    assert group_jobs(jobs, 2) == [[0, 2], [1], [3]]
    assert group_jobs(jobs, 8) == [[0, 2, 3], [1]]
    assert group_jobs(jobs, 1) == [[0], [1], [2], [3]]
    runner = Runner(preset, device="cpu")
    together = runner.generate_batch([jobs[i] for i in (0, 2, 3)])
    assert [r.batch_size for r in together] == [3, 3, 3]
    assert [r.job.prompt for r in together] == ["a cat", "a dog", "a cow"]
    for result, i in zip(together, (0, 2, 3)):
        alone = runner.generate(jobs[i])
        assert result.nfe == alone.nfe == NFE
        diff = np.abs(np.asarray(result.media, dtype=int) - np.asarray(alone.media, dtype=int))
        assert diff.max() <= 1  # uint8 pixels: batched kernels round a little differently
    with pytest.raises(ValueError):
        runner.generate_batch(jobs[:2])


# ------------------------------------------------------------------------------------------------------
# 5. Forecaster state memory, reported per call
# ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_state_bytes_are_reported(family, tiny_pipes):
    pipe = tiny_pipes(family)
    module = pipe.transformer
    seen = []
    head = module.get_submodule(family_for(module).head)
    handle_hook = head.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    try:
        _, stats = spectrum_run(pipe, family)
        _, stats_w1 = spectrum_run(pipe, family, SpectrumConfig(nfe=NFE, blend=1.0))
    finally:
        handle_hook.remove()
    numel = math.prod(seen[0])
    branches = 2 if family == "wan" else 1
    # (M+1) float32 moment rows per branch, plus the last two features (float32 here) when w < 1.
    assert stats_w1.forecaster_state_bytes == branches * 5 * 4 * numel
    assert stats.forecaster_state_bytes == branches * 7 * 4 * numel
    assert stats.to_dict()["forecaster_state_bytes"] == stats.forecaster_state_bytes


def test_chunked_update_matches_whole_rows():
    """The fused pass computes every element with the same operations, in the same order, as updating
    whole rows would: chunk boundaries (a feature longer than one chunk) change nothing."""
    from spectrum_core.method import forecasters

    gen = torch.Generator().manual_seed(0)
    shape = (3, 40_000)  # 120 000 elements: several chunks and a ragged last one
    chunked, whole = ChebyshevForecaster(blend=0.5), ChebyshevForecaster(blend=0.5)
    steps = [0, 1, 2, 3, 4, 6, 8, 11]
    features = [torch.randn(shape, generator=gen).to(torch.bfloat16) for _ in steps]
    for step, feature in zip(steps, features):
        chunked.update(2 * step / 50 - 1, feature)
    original = forecasters._chunk
    forecasters._chunk = lambda t: 1 << 40  # one chunk: whole rows
    try:
        for step, feature in zip(steps, features):
            whole.update(2 * step / 50 - 1, feature)
        whole_prediction = whole.predict(2 * 13 / 50 - 1)
    finally:
        forecasters._chunk = original
    assert torch.equal(chunked._moments, whole._moments)
    assert torch.equal(chunked.predict(2 * 13 / 50 - 1), whole_prediction)


def test_host_staging_degrades_to_plain_copies_without_cuda(monkeypatch):
    """forecast_state="cpu" stages through pinned memory only for CUDA tensors; on CPU (and with no CUDA at
    all) the helpers are plain copies that never ask for pinned memory."""
    from spectrum_core.hooks import spectrum as hooks

    def no_pinning(*args, pin_memory=False, **kwargs):
        assert not pin_memory, "pinned memory requested for a non-CUDA tensor"
        return original_empty(*args, **kwargs)

    original_empty = torch.empty
    monkeypatch.setattr(hooks.torch, "empty", no_pinning)
    feature = torch.randn(2, 5, dtype=torch.bfloat16)
    host = hooks.to_host(feature)
    assert host.device.type == "cpu" and torch.equal(host, feature)
    out = hooks.to_device(torch.randn(2, 5), torch.device("cpu"), torch.bfloat16)
    assert out.dtype == torch.bfloat16 and out.device.type == "cpu"


# ------------------------------------------------------------------------------------------------------
# 6. The GPU user's check script, run here on what a CPU can run
# ------------------------------------------------------------------------------------------------------


def test_stack_checks_script_passes_what_the_cpu_runs_and_skips_the_rest(tiny_cache, tmp_path):
    import json

    from spectrum_core.bench import stack_checks

    out = tmp_path / "checks.json"
    code = stack_checks.main(["--device", "cpu", "--families", "flux", "--backend", "aot_eager", "--checks", "host-state,group-offload,compile-regional,sequential-offload",
                              "--cache-dir", str(tiny_cache), "--out", str(out)])
    rows = {r["check"]: r for r in json.loads(out.read_text())["rows"]}
    assert code == 0, rows
    for check in ("host-state", "group-offload", "compile-regional"):
        assert rows[check]["status"] == "pass" and rows[check]["nfe"] == 8 and rows[check]["identical"], rows[check]
    assert rows["host-state"]["state_device"] == "cpu" and rows["host-state"]["state_bytes"] > 0
    assert rows["compile-regional"]["recompiled_frames"] == 0
    assert rows["sequential-offload"]["status"] == "skipped"


def test_stack_checks_script_reports_a_failing_stacking_and_exits_1(tiny_cache, tmp_path, monkeypatch):
    import json

    from spectrum_core.bench import stack_checks

    def broken(pipe, check, device):
        raise RuntimeError("offload hook lost the head's device")

    monkeypatch.setattr(stack_checks, "_stack", broken)
    out = tmp_path / "checks.json"
    code = stack_checks.main(["--device", "cpu", "--families", "flux", "--checks", "model-offload",
                              "--cache-dir", str(tiny_cache), "--out", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    assert code == 1 and row["status"] == "fail" and "offload hook lost" in row["reason"]
