"""The family registry against real pipelines: what is forecast, which classes and samplers are refused, and
that every registry entry is reachable (a preset, a bare folder's model_index)."""

import dataclasses
import types

import diffusers
import numpy as np
import pytest
import torch

from conftest import ALL_FAMILIES, generate
from spectrum_core import apply_spectrum
from spectrum_core.hooks import spectrum as hooks
from spectrum_core.hooks.families import (
    FAMILIES,
    expert_names,
    family_for,
    variant,
    variant_for_model_index,
    variant_names,
)


def _experts(pipe):
    return [getattr(pipe, name) for name in expert_names(pipe)]


# The linear layer that maps each head token to one patch of the output, where it is not the transformer's proj_out.
HEAD_PROJECTIONS = {"kandinsky5": "out_layer.out_layer", "dit": "proj_out_2"}


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_the_head_receives_only_image_or_video_tokens(family, tiny_pipes):
    """What Spectrum forecasts is the head's input. Its tokens, each projected by proj_out to one patch of
    the output, must make up exactly the noise prediction: a text token in there would add patches."""
    pipe = tiny_pipes(family)
    module = _experts(pipe)[0]
    head = module.get_submodule(family_for(module).head)
    seen = {}

    def record(key, tensor):  # returns None: a hook that returns a value would replace the call's args
        if isinstance(tensor, list):  # Z-Image: one tensor per sample
            tensor = torch.stack(tensor)
        seen.setdefault(key, tuple(tensor.shape))

    h1 = head.register_forward_pre_hook(lambda mod, args: record("head", args[0]))
    h2 = module.register_forward_hook(lambda mod, args, out: record("out", out[0]))
    try:
        generate(pipe, family, 2)
    finally:
        h1.remove()
        h2.remove()
    if family_for(module).name == "unet":  # the UNet: the last up block's feature map, at the latents' size
        assert seen["head"][0] == seen["out"][0] and seen["head"][2:] == seen["out"][2:]
        assert seen["head"][1] == head.num_channels
        return
    # Kandinsky 5's head gets the video tokens unflattened, (batch, frames, height, width, channels); Cosmos 3's
    # packed without a batch axis, (tokens, channels), which the product below counts all the same.
    batch, *grid, width = seen["head"]
    tokens = int(np.prod(grid))
    if family in ("zimage", "lumina2"):
        # Z-Image's final layer gets the unified stream, image tokens first and caption tokens after (its
        # unpatchify drops the latter), Lumina-2's norm_out the joint stream, caption tokens first: the
        # forecast carries both, a documented exception.
        patch = module.all_final_layer["2-1"].linear if family == "zimage" else module.norm_out.linear_2
        assert width == patch.in_features
        assert batch * tokens * patch.out_features > int(np.prod(seen["out"]))
        return
    proj = module.get_submodule(HEAD_PROJECTIONS.get(family, "proj_out"))
    assert width == proj.in_features
    assert batch * tokens * proj.out_features == int(np.prod(seen["out"]))


def test_an_unknown_transformer_class_is_refused_naming_the_supported_ones_and_how_to_add_one():
    pipe = types.SimpleNamespace(transformer=torch.nn.Linear(2, 2))
    with pytest.raises(ValueError) as error:
        apply_spectrum(pipe)
    message = str(error.value)
    assert "does not know the transformer class Linear" in message
    assert all(f.transformer in message for f in FAMILIES)
    assert "spectrum_core/hooks/families.py" in message


def test_a_second_order_sampler_is_refused_before_any_forecast(tiny_pipes):
    """Heun evaluates the transformer twice per step at two noise levels: Spectrum's step index would not
    be the sampler's, so the call is refused instead of forecast on wrong steps."""
    base = tiny_pipes("sd35")
    pipe = diffusers.StableDiffusion3Pipeline(
        **{**base.components, "scheduler": diffusers.FlowMatchHeunDiscreteScheduler.from_config(base.scheduler.config)}
    )
    pipe.set_progress_bar_config(disable=True)
    calls = []
    counter = pipe.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        generate(pipe, "sd35", 6)
        assert len(calls) == 2 * 6 - 1  # without Spectrum: two calls per step but the last
        with apply_spectrum(pipe, nfe=6) as handle:
            calls.clear()
            with pytest.raises(ValueError, match="FlowMatchHeunDiscreteScheduler is a sampler of order 2"):
                generate(pipe, "sd35", 12)
            assert calls == [] and handle.stats is None  # refused before the first transformer call ran
    finally:
        counter.remove()


def test_separate_cfg_calls_the_hooks_cannot_tell_apart_are_refused(tiny_pipes, monkeypatch):
    """Chroma makes its cond and uncond calls without a cache context; the registry names the argument that
    tells them apart. Without that datum both calls land on one branch at the same step: refused, never
    forecast with a mixed history."""
    pipe = tiny_pipes("chroma")
    known = family_for(pipe.transformer)
    monkeypatch.setattr(hooks, "family_for", lambda module: dataclasses.replace(known, branch_argument=None))
    with apply_spectrum(pipe, nfe=8):
        with pytest.raises(RuntimeError, match="twice at step 0 in the same branch"):
            generate(pipe, "chroma", 12)


def test_chroma_branches_follow_the_prompt_embeddings_not_the_call_order(tiny_pipes, monkeypatch):
    """The cond branch is the one given the prompt's embeddings: swapping which embeddings the pipeline
    passes first would swap the names, so each branch keeps the history of one conditioning."""
    pipe = tiny_pipes("chroma")
    seen = []
    original = hooks._BranchStates.mark

    def spy(self, tensor):
        original(self, tensor)
        seen.append((self.marked, tensor.data_ptr()))

    monkeypatch.setattr(hooks._BranchStates, "mark", spy)
    with apply_spectrum(pipe, nfe=8) as handle:
        generate(pipe, "chroma", 12)
        assert sorted(handle.stats.nfe_by_branch) == ["transformer/cond", "transformer/uncond"]
    by_branch = {}
    for name, pointer in seen:
        by_branch.setdefault(name, set()).add(pointer)
    assert set(by_branch) == {"cond", "uncond"}
    assert all(len(pointers) == 1 for pointers in by_branch.values())  # one tensor per branch, every step
    assert by_branch["cond"] != by_branch["uncond"]


def test_every_variant_has_its_shipped_preset():
    from spectrum_core.app.presets import load_preset

    for name in variant_names():
        family, var = variant(name)
        preset = load_preset(var.preset)
        assert preset.family == name and preset.pipeline == var.pipeline, name
        assert preset.is_video == var.video, name


@pytest.mark.parametrize("name", ["ltx", "cogvideox", "chroma", "qwenimage", "flux2", "flux2-klein", "hunyuan15", "mochi",
                                  "ltx2", "cogview4", "lumina2", "pixart-sigma", "latte", "dit", "hunyuanimage", "bria", "kandinsky5",
                                  "motif", "cosmos3"])
def test_a_bare_folder_finds_its_variant_from_model_index(name):
    _, var = variant(name)
    index = {"_class_name": var.pipeline, "transformer": ["diffusers", "SomeTransformer"]}
    assert variant_for_model_index(index) is var


def _ltx2_call(pipe, steps):
    """The tiny LTX-2 call's (video, audio) latents."""
    from spectrum_core.models.tiny import TINY_CALL_KWARGS

    out = pipe(prompt="a red circle on a navy background", num_inference_steps=steps, output_type="latent",
               generator=torch.Generator().manual_seed(0), **TINY_CALL_KWARGS["ltx2"])
    return out.frames.double().numpy(), out.audio.double().numpy()


def test_ltx2_forecasts_the_audio_heads_input_too(tiny_pipes, monkeypatch):
    """LTX-2's blocks carry the audio stream to a head of its own (audio_norm_out). A skipped block skips it
    too, so the audio head's input is forecast by a forecaster of its own in each branch; without that
    (side_heads dropped) the audio head would get the stream as it entered the blocks on every forecast step."""
    from conftest import psnr

    pipe = tiny_pipes("ltx2")
    module = pipe.transformer
    shapes = {}

    def record(key, tensor):  # returns None: a hook that returns a value would replace the call's args
        shapes.setdefault(key, tuple(tensor.shape))

    hooks_ = [module.audio_norm_out.register_forward_pre_hook(lambda m, a: record("head", a[0])),
              module.register_forward_hook(lambda m, a, out: record("out", out[1]))]
    try:
        full_video, full_audio = _ltx2_call(pipe, 24)
    finally:
        for h in hooks_:
            h.remove()
    batch, tokens, width = shapes["head"]  # audio tokens only, each one patch of the audio output
    assert width == module.audio_proj_out.in_features
    assert batch * tokens * module.audio_proj_out.out_features == int(np.prod(shapes["out"]))

    updates = {}
    with apply_spectrum(pipe, nfe=10) as handle:
        handle.subscribe(lambda e: updates.update({
            name: tuple(f.num_updates for f in state.forecasters)
            for name, state in handle._session.model_hooks["transformer"].state_manager.branches.items()}))
        video, audio = _ltx2_call(pipe, 24)
        assert handle.stats.nfe == 10
    assert updates == {name: (10, 10) for name in ("cond_uncond", "uncond_stg", "uncond_modality")}

    known = family_for(module)
    monkeypatch.setattr(hooks, "family_for", lambda m: dataclasses.replace(known, side_heads=()))
    with apply_spectrum(pipe, nfe=10):
        _, unforecast_audio = _ltx2_call(pipe, 24)
    assert psnr(audio, full_audio) > psnr(unforecast_audio, full_audio) + 6, (
        psnr(audio, full_audio), psnr(unforecast_audio, full_audio))
    assert np.isfinite(video).all() and not np.array_equal(video, full_video)


def test_jobs_of_a_one_sample_pipeline_run_one_call_each(tiny_cache, monkeypatch):
    """Cosmos 3's pipeline makes one sample per call (it would keep only the first prompt of a list): the
    runner runs a batch of its jobs one call each, so every job gets its own prompt, seed and output."""
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import Runner

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    preset = load_preset("tiny-cosmos3")
    assert not variant("cosmos3")[1].batches
    jobs = [build_job(preset, p, {"steps": 8, "nfe": 6, "seed": s}) for p, s in (("a cat", 1), ("a dog", 2))]
    runner = Runner(preset, device="cpu")
    calls = []
    counter = runner.pipe.transformer.register_forward_hook(lambda *a: calls.append(1))
    try:
        together = runner.generate_batch(jobs)
    finally:
        counter.remove()
    assert len(calls) == 2 * 8 * 2 and len(together) == 2  # two jobs, each 8 steps of two CFG calls
    assert [r.job.prompt for r in together] == ["a cat", "a dog"] and [r.batch_size for r in together] == [1, 1]
    for result, job in zip(together, jobs):
        alone = runner.generate(job)
        assert result.nfe == alone.nfe == 6
        assert np.array_equal(np.asarray(result.media), np.asarray(alone.media))
    assert not np.array_equal(np.asarray(together[0].media), np.asarray(together[1].media))


def test_output_samples_gives_every_pipeline_output_a_batch_axis():
    from spectrum_core.hooks.families import output_samples

    frames = np.zeros((2, 5, 8, 8, 3))
    assert output_samples(types.SimpleNamespace(frames=frames)) is frames
    assert output_samples(types.SimpleNamespace(images=frames[:, 0])) is not None
    assert output_samples(types.SimpleNamespace(video=frames[0])).shape == (1, 5, 8, 8, 3)  # Cosmos 3, decoded
    latents = torch.zeros(1, 8, 2, 4, 4)
    assert output_samples(types.SimpleNamespace(video=latents)) is latents  # its latents carry the batch axis
    pil = [object()] * 5
    assert output_samples(types.SimpleNamespace(video=pil)) == [pil]


def test_the_runner_passes_the_frames_by_the_pipelines_own_name(tiny_cache, monkeypatch):
    """LattePipeline takes its frame count as video_length (it has no num_frames): the runner's call names it
    so, and the video it writes has the preset's frames, forecast with Spectrum."""
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import build_job
    from spectrum_core.app.runner import Runner

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    preset = load_preset("tiny-latte")
    assert variant("latte")[1].frames_argument == "video_length"
    job = build_job(preset, "a cat", {"steps": 8, "nfe": 6, "seed": 1})
    runner = Runner(preset, device="cpu")
    kwargs = runner.call_kwargs(job, torch.Generator())
    assert kwargs["video_length"] == preset.frames == 5 and "num_frames" not in kwargs
    result = runner.generate(job)
    assert result.nfe == 6 and np.asarray(result.media).shape == (5, 64, 64, 3)
    assert variant("wan")[1].frames_argument == "num_frames"


def test_a_class_conditional_prompt_names_a_class_label(tiny_cache, tiny_pipes, monkeypatch):
    """DiT reads ImageNet class ids, not text: the prompt is one of the checkpoint's labels, mapped as the
    pipeline's get_label_ids maps it (every comma-separated name of a class); an unknown one is refused in
    one line from model_index.json alone, before any weight loads; a batch gets each job's class."""
    from spectrum_core.app import runner as runner_module
    from spectrum_core.app.presets import load_preset
    from spectrum_core.app.request import RequestError, build_job
    from spectrum_core.app.runner import Runner
    from spectrum_core.hooks.families import label_ids, prompt_kwargs
    from spectrum_core.models.tiny.dit import ID2LABEL

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    pipe = tiny_pipes("dit")
    v = variant("dit")[1]
    assert v.prompt_argument == "class_labels" and not v.sized
    preset = load_preset("tiny-dit")
    assert preset.class_labels() == pipe.labels and len(pipe.labels) > len(ID2LABEL)  # with the synonyms
    for label in pipe.labels:
        assert label_ids(pipe.labels, [label]) == pipe.get_label_ids([label])
    assert prompt_kwargs(v, ["white shark", "umbrella"], pipe.labels) == {"class_labels": [2, 879]}
    assert prompt_kwargs(variant("flux")[1], "a cat") == {"prompt": "a cat"}

    def no_loading(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(runner_module, "load_pipeline", no_loading)
    with pytest.raises(RequestError) as refused:
        build_job(preset, "white sharks", {"steps": 8})
    assert "'white sharks' is not one of this model's" in str(refused.value) and "'white shark'" in str(refused.value)
    assert "\n" not in str(refused.value)
    monkeypatch.undo()

    monkeypatch.setenv("SPECTRUM_CACHE", str(tiny_cache))
    jobs = [build_job(preset, p, {"steps": 8, "nfe": 6, "seed": 1}) for p in ("umbrella", "a cat")]
    runner = Runner(preset, device="cpu")
    kwargs = runner.call_kwargs(jobs[0], torch.Generator())
    assert kwargs["class_labels"] == [879] and not {"prompt", "height", "width"} & set(kwargs)
    together = runner.generate_batch(jobs)
    alone = [runner.generate(job) for job in jobs]
    assert [r.nfe for r in together] == [6, 6] and np.asarray(together[0].media).shape == (64, 64, 3)
    for a, b in zip(together, alone):
        assert np.allclose(np.asarray(a.media, dtype=float), np.asarray(b.media, dtype=float), atol=2)
    assert not np.array_equal(np.asarray(together[0].media), np.asarray(together[1].media))
