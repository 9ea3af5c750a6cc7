"""The tiny pipeline factory: local-only construction, the save/load round trip, the on-disk cache, and the
call patterns (CFG batching, cond/uncond contexts, Wan2.2 expert switch) that spectrum relies on."""

import numpy as np
import pytest
import torch

import spectrum_core.models.tiny as tiny
from spectrum_core.models.tiny import (
    FAMILIES,
    TINY_CALL_KWARGS,
    build_tiny_pipeline,
    load_tiny_pipeline,
    tiny_pipeline_dir,
)

from spectrum_core.hooks.families import expert_names, output_samples, prompt_kwargs, variant

VIDEO = {name for name in FAMILIES if variant(name)[1].video}
PROMPT = "a photo of an astronaut riding a zebra-striped horse"


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy shared CPU two OpenMP threads make
    each call several times slower (threads wait on each other at every op); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def load(tiny_pipes):
    """The session's tiny pipelines (conftest.tiny_pipes): each is built, saved and loaded once per run."""
    return tiny_pipes


def run(pipe, family, steps, **overrides):
    kwargs = {**TINY_CALL_KWARGS[family], **overrides}
    words = prompt_kwargs(variant(family)[1], PROMPT, getattr(pipe, "labels", None))  # DiT: class ids
    return pipe(**words, num_inference_steps=steps, generator=torch.Generator().manual_seed(0), **kwargs)


def count_calls(module):
    """Record the batch size of every forward call of ``module``; returns (list, hook handle)."""
    batches = []
    def record(mod, args, kwargs, out):
        latents = kwargs.get("hidden_states", kwargs.get("sample", kwargs.get("vision_tokens", args[0] if args else None)))
        batches.append(len(latents) if isinstance(latents, list) else latents.shape[0])  # Z-Image, Cosmos 3: a list

    handle = module.register_forward_hook(record, with_kwargs=True)
    return batches, handle


def test_unknown_family_names_the_valid_ones(tmp_path):
    valid = ", ".join(FAMILIES)
    assert valid.startswith("flux, sd35, hunyuan, wan, wan22")
    with pytest.raises(ValueError, match=valid):
        build_tiny_pipeline("sd15")
    with pytest.raises(ValueError, match=valid):
        tiny_pipeline_dir("sd15", tmp_path)
    with pytest.raises(ValueError, match=valid):
        load_tiny_pipeline("sd15", tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("family", FAMILIES)
def test_round_trip_keeps_class_weights_and_tokenization(family, load):
    built = build_tiny_pipeline(family)
    loaded = load(family)
    assert type(loaded) is type(built)
    experts = expert_names(built)
    for name in experts:
        want, got = getattr(built, name).state_dict(), getattr(loaded, name).state_dict()
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want), name
    for name in ("tokenizer", "tokenizer_2", "tokenizer_3", "text_tokenizer"):  # Cosmos 3: text_tokenizer
        if getattr(built, name, None) is not None:
            assert getattr(loaded, name)(PROMPT).input_ids == getattr(built, name)(PROMPT).input_ids, name
    if family == "wan22":
        assert loaded.config.boundary_ratio == 0.875
        assert not torch.equal(loaded.transformer.proj_out.weight, loaded.transformer_2.proj_out.weight)


def test_build_is_deterministic_and_seeded():
    a, b, c = build_tiny_pipeline("wan"), build_tiny_pipeline("wan"), build_tiny_pipeline("wan", seed=1)
    assert torch.equal(a.transformer.proj_out.weight, b.transformer.proj_out.weight)
    assert not torch.equal(a.transformer.proj_out.weight, c.transformer.proj_out.weight)
    assert a.tokenizer.backend_tokenizer.to_str() == c.tokenizer.backend_tokenizer.to_str()


@pytest.mark.parametrize("family", FAMILIES)
def test_short_call_gives_finite_output_of_the_expected_shape(family, load):
    pipe = load(family)
    out = run(pipe, family, steps=4, output_type="np")
    kw = TINY_CALL_KWARGS[family]
    array = np.asarray(output_samples(out))
    if family in VIDEO:
        assert array.shape == (1, kw[variant(family)[1].frames_argument], kw["height"], kw["width"], 3)
    elif variant(family)[1].sized:
        assert array.shape == (1, kw["height"], kw["width"], 3)
    else:  # DiT: its transformer's sample size, in latents
        side = pipe.transformer.config.sample_size * 2 ** (len(pipe.vae.config.block_out_channels) - 1)
        assert array.shape == (1, side, side, 3)
    assert np.isfinite(array).all() and array.std() > 0


def test_hunyuan_default_template_crops_exactly_the_template():
    """The pipeline crops a hard-coded 95 tokens (Llama-3's count for its template prefix); ours must match."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video import DEFAULT_PROMPT_TEMPLATE

    tokenizer = build_tiny_pipeline("hunyuan").tokenizer
    prefix = DEFAULT_PROMPT_TEMPLATE["template"].split("{}")[0]
    assert len(tokenizer(prefix).input_ids) == DEFAULT_PROMPT_TEMPLATE["crop_start"] == 95


def test_cache_dir_is_reused_without_rebuilding(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRUM_CACHE", str(tmp_path))
    first = tiny_pipeline_dir("wan")
    assert first == tmp_path / "tiny" / "wan-v1" and (first / "model_index.json").is_file()
    stamp = (first / "model_index.json").stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached tiny pipeline")

    monkeypatch.setattr(tiny, "build_tiny_pipeline", no_rebuild)
    assert tiny_pipeline_dir("wan") == first
    assert (first / "model_index.json").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "tiny").iterdir()) == ["wan-v1"]  # no staging leftovers


def test_losing_the_rename_race_uses_the_winners_copy(tmp_path, monkeypatch):
    target = tmp_path / "tiny" / "wan-v1"
    real_build = tiny.build_tiny_pipeline

    def build_while_another_process_finishes_first(family, seed=0):
        pipe = real_build(family, seed)
        pipe.save_pretrained(target)  # the other process's copy lands before our rename
        (target / "winner").touch()
        return pipe

    monkeypatch.setattr(tiny, "build_tiny_pipeline", build_while_another_process_finishes_first)
    assert tiny_pipeline_dir("wan", cache_dir=tmp_path) == target
    assert (target / "winner").exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["wan-v1"]


# What each tiny pipeline does per step, observed from the outside: transformer calls, their batch size,
# and the cache contexts it opens around them. The registry's Variant.contexts must say the same.
CALL_PATTERNS = {
    "flux": (1, 1, ["cond"]), "sd35": (1, 2, []), "hunyuan": (1, 1, ["cond"]), "wan": (2, 1, ["cond", "uncond"]),
    "wan22-5b": (2, 1, ["cond", "uncond"]), "ltx": (1, 2, ["cond_uncond"]), "cogvideox": (1, 2, ["cond_uncond"]),
    "chroma": (2, 1, []), "qwenimage": (2, 1, ["cond", "uncond"]), "flux2-klein": (2, 1, ["cond", "uncond"]),
    "zimage": (1, 2, []), "sdxl": (1, 2, []), "hunyuan15": (2, 1, ["pred_cond", "pred_uncond"]),
    "flux2": (1, 1, []),
    "mochi": (1, 2, ["cond_uncond"]),
    # LTX-2: the CFG pair, then the STG and modality-isolation calls on the cond half alone
    "ltx2": (3, (2, 1, 1), ["cond_uncond", "uncond_stg", "uncond_modality"]),
    "cogview4": (2, 1, ["cond", "uncond"]),
    "lumina2": (2, 1, []),
    "pixart-sigma": (1, 2, []),
    "latte": (1, 2, []),
    "dit": (1, 2, []),
    "hunyuanimage": (2, 1, ["pred_cond", "pred_uncond"]),
    "bria": (1, 2, []),
    "kandinsky5": (2, 1, []),
    "motif": (2, 1, ["pred_cond", "pred_uncond"]),
    "cosmos3": (2, 1, ["cond", "uncond"]),  # one sample per call, its latents a list of one
}


@pytest.mark.parametrize("family", sorted(CALL_PATTERNS))
def test_transformer_calls_per_step(family, load, monkeypatch):
    calls_per_step, batch, step_contexts = CALL_PATTERNS[family]
    pipe = load(family)
    denoiser = getattr(pipe, expert_names(pipe)[0])
    batches, handle = count_calls(denoiser)
    contexts = []
    enter_context = getattr(denoiser, "cache_context", None)  # SD3's transformer and SDXL's UNet have none

    def recording_context(name, *args, **kwargs):
        contexts.append(name)
        return enter_context(name, *args, **kwargs)

    if enter_context is not None:
        monkeypatch.setattr(denoiser, "cache_context", recording_context)
    try:
        run(pipe, family, steps=4, output_type="latent")
    finally:
        handle.remove()
    assert batches == (list(batch) if isinstance(batch, tuple) else [batch] * calls_per_step) * 4
    assert contexts == step_contexts * 4
    assert list(variant(family)[1].contexts) == step_contexts
    assert variant(family)[1].calls_per_step == calls_per_step


def test_every_tiny_family_has_its_call_pattern_checked():
    assert set(CALL_PATTERNS) | {"wan22"} == set(FAMILIES)  # wan22: two experts, checked below


def test_wan22_uses_both_experts_at_50_steps(load):
    pipe = load("wan22")
    order = []
    high, h1 = count_calls(pipe.transformer)
    low, h2 = count_calls(pipe.transformer_2)
    h3 = pipe.transformer.register_forward_hook(lambda *a: order.append("high"))
    h4 = pipe.transformer_2.register_forward_hook(lambda *a: order.append("low"))
    run(pipe, "wan22", steps=50, output_type="latent")
    for h in (h1, h2, h3, h4):
        h.remove()
    assert len(high) + len(low) == 100  # CFG: two calls per step
    assert len(high) >= 10 and len(low) >= 10  # at least 5 steps each
    assert order == sorted(order)  # "high" < "low": the high-noise expert runs first, then hands over


def test_every_registry_variant_with_tiny_defaults_has_a_builder_and_a_shipped_preset():
    """Adding a family is one registry entry plus its tiny builder: the tables cannot drift apart."""
    from spectrum_core.app.presets import load_preset, preset_names
    from spectrum_core.hooks.families import FAMILIES as RECORDS, variant, variant_names

    assert set(tiny._BUILDERS) == set(variant_names(tiny_only=True)) == set(FAMILIES) | set(tiny.IMAGE_FAMILIES)
    for record in RECORDS:
        assert record.transformer_class is not None, record.transformer
    for name in FAMILIES + tiny.IMAGE_FAMILIES:
        preset = load_preset(f"tiny-{name}")
        assert preset.family == name and preset.pipeline == variant(name)[1].pipeline
    assert all(load_preset(p).family in variant_names() for p in preset_names())


def test_lumina2_tokenizer_is_trained_on_the_pipelines_system_prompt():
    """The tiny Lumina-2 tokenizer was trained on the system prompt the pipeline puts before every prompt: if
    diffusers changes that prompt, the tiny model's template words stop being single tokens."""
    from spectrum_core.models.tiny.lumina2 import SYSTEM_PROMPT

    pipe = build_tiny_pipeline("lumina2")
    assert pipe.system_prompt == SYSTEM_PROMPT
    words = SYSTEM_PROMPT.split()
    assert len(pipe.tokenizer(SYSTEM_PROMPT).input_ids) <= len(words) + 4  # '.', 'image-text' -> 3 pieces


def test_hunyuan15_template_crops_exactly_the_template():
    """HunyuanVideo-1.5's pipeline drops a hard-coded 108 tokens (Qwen2.5's count for its system-message
    template); the tiny tokenizer splits the rendered template into exactly as many."""
    from spectrum_core.models.tiny.hunyuan15 import system_template

    pipe = build_tiny_pipeline("hunyuan15")
    assert len(pipe.tokenizer(system_template()).input_ids) == pipe.prompt_template_encode_start_idx == 108


def test_hunyuanimage_template_crops_exactly_the_template():
    """HunyuanImage-2.1's pipeline drops a hard-coded 34 tokens (Qwen2.5's count for its system-message
    template); the tiny tokenizer splits the template's prefix into exactly as many."""
    from spectrum_core.models.tiny.hunyuanimage import system_template

    pipe = build_tiny_pipeline("hunyuanimage")
    assert len(pipe.tokenizer(system_template()).input_ids) == pipe.prompt_template_encode_start_idx == 34


def test_kandinsky5_template_crops_exactly_the_template():
    """Kandinsky 5's pipeline drops a hard-coded 128 tokens (the real tokenizer's count for its template's
    prefix); the tiny tokenizer splits that prefix into exactly as many, so the prompt's tokens are kept."""
    from spectrum_core.models.tiny.kandinsky5 import system_template

    pipe = build_tiny_pipeline("kandinsky5")
    assert len(pipe.tokenizer(system_template()).input_ids) == pipe.prompt_template_encode_start_idx == 128
    assert pipe.tokenizer(system_template() + "a cat").input_ids[128:] == pipe.tokenizer("a cat").input_ids
