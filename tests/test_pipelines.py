"""The pipelines that take an input image (img2img, inpaint, fill, edit, image-to-video, VACE) under Spectrum, each
on its tiny model loaded with from_pretrained: exact block calls over the steps the pipeline actually runs
(strength < 1 runs fewer; two experts), remove() bit-identical, finite output, CFG branches apart; what the head
sees beside the kept latents (edit image tokens, VACE's reference frame, HunyuanVideo-I2V's image frame); the
command line's input checks. Qwen-Image-Edit (-Plus) has no tiny model and runs on prompt embeddings."""

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import generate
from spectrum_core import SpectrumConfig, apply_spectrum, nfe_bounds
from spectrum_core.hooks.families import STRENGTH_KEEP, blocks, expert_names, family_for, steps_run, variant
from spectrum_core.models.tiny import IMAGE_FAMILIES, TINY_CALL_KWARGS

STEPS, STRENGTH, NFE = 12, 0.55, 4
CONFIG = SpectrumConfig(nfe=NFE, warmup=2)


def inputs(name):
    """The call's image (and mask, and strength) for a tiny pipeline that takes them."""
    rng = np.random.RandomState(0)
    v = variant(name)[1]
    out = {v.arguments["image"]: Image.fromarray((rng.rand(64, 64, 3) * 255).astype("uint8"))}
    if "mask" in v.inputs:
        out[v.arguments["mask"]] = Image.fromarray(
            np.where(np.arange(64)[None, :] >= 32, 255, 0).astype("uint8").repeat(64, 0))
    if v.strength is not None:
        out["strength"] = STRENGTH
    return out


class BlockCounter:
    """Counts block executions: a block call counts when its first parametrised submodule ran inside it (a
    skipped block's own forward hooks still fire; that submodule may run more than once per block call, as
    the token-replace norms' linear does, once for each timestep embedding)."""

    def __init__(self, pipe):
        self.count, self.handles = 0, []
        for name in expert_names(pipe):
            module = getattr(pipe, name)
            for _, block in blocks(module, family_for(module)):
                leaf = next(m for m in block.modules() if m is not block and list(m.parameters(recurse=False)))
                ran = [False]
                self.handles += [
                    block.register_forward_pre_hook(lambda *_, ran=ran: ran.__setitem__(0, False)),
                    leaf.register_forward_hook(lambda *_, ran=ran: ran.__setitem__(0, True)),
                    block.register_forward_hook(lambda *_, ran=ran: self._done(ran)),
                ]

    def _done(self, ran):
        self.count += ran[0]

    def close(self):
        for h in self.handles:
            h.remove()


def run(pipe, name, steps=STEPS, **extra):
    """The seeded call, and how many steps the pipeline's own loop ran (its step-end callbacks)."""
    ran = []

    def on_step(_pipe, i, _t, kwargs):
        ran.append(i)
        return kwargs

    out = generate(pipe, name, steps, callback_on_step_end=on_step, **{**inputs(name), **extra})
    return out, len(ran)


@pytest.mark.parametrize("name", IMAGE_FAMILIES)
def test_the_registry_names_the_cache_contexts_the_pipeline_opens(name, tiny_pipes, monkeypatch):
    """Variant.contexts is what the pipeline opens around each step's transformer calls (none for the FLUX
    img2img/inpaint/Kontext/Fill and HunyuanVideo-I2V pipelines, which is why diffusers' caches fail there)."""
    pipe = tiny_pipes(name)
    opened = []
    for expert in expert_names(pipe):
        denoiser = getattr(pipe, expert)
        enter = getattr(denoiser, "cache_context", None)  # SD3's transformer and SDXL's UNet have none
        if enter is not None:
            def recording(context, *args, _enter=enter, **kwargs):
                opened.append(context)
                return _enter(context, *args, **kwargs)

            monkeypatch.setattr(denoiser, "cache_context", recording)
    _, ran = run(pipe, name, steps=4)
    assert opened == list(variant(name)[1].contexts) * ran


@pytest.mark.parametrize("name", IMAGE_FAMILIES)
def test_spectrum_counts_exact_block_calls_over_the_steps_run(name, tiny_pipes):
    pipe = tiny_pipes(name)
    v = variant(name)[1]
    calls_per_step = v.calls_per_step
    # NFE: raised to what two experts (Wan2.2 I2V, each restarting its warm-up) can attain.
    nfe = max(NFE, nfe_bounds(pipe, steps_run(v, STEPS, STRENGTH), CONFIG.warmup)[0])
    counter = BlockCounter(pipe)
    try:
        before, ran = run(pipe, name)
        full_count, counter.count = counter.count, 0
        handle = apply_spectrum(pipe, CONFIG.replace(nfe=nfe))
        try:
            hooked, ran_hooked = run(pipe, name)
            stats = handle.stats
        finally:
            handle.remove()
        hooked_count = counter.count
    finally:
        counter.close()
    after, _ = run(pipe, name)

    # each step runs one expert: the blocks of one call are one expert's (all experts have the same layout)
    per_expert = {len(blocks(getattr(pipe, e), family_for(getattr(pipe, e)))) for e in expert_names(pipe)}
    assert len(expert_names(pipe)) == v.experts and len(per_expert) == 1
    n_blocks = per_expert.pop()
    assert ran == ran_hooked == steps_run(v, STEPS, STRENGTH)  # the registry's rule is the pipeline's
    if v.strength is not None:
        assert ran < STEPS
    assert full_count == ran * calls_per_step * n_blocks
    assert stats.num_steps == ran and stats.nfe == nfe and len(stats.forecast_steps) == ran - nfe
    # one state per expert and CFG branch; an expert's branches run real on the same steps
    assert len(stats.nfe_by_branch) == calls_per_step * v.experts
    per_expert_nfe = {}
    for label, count in stats.nfe_by_branch.items():
        per_expert_nfe.setdefault(label.split("/")[0], set()).add(count)
    assert all(len(counts) == 1 for counts in per_expert_nfe.values())
    assert sum(counts.pop() for counts in per_expert_nfe.values()) == nfe
    assert hooked_count == nfe * calls_per_step * n_blocks
    assert np.isfinite(hooked).all() and not np.array_equal(hooked, before)
    assert np.array_equal(after, before)


def test_bare_wan_i2v_folders_find_their_variant(tiny_pipes, tiny_cache):
    """Wan2.1 I2V and Wan2.2 I2V A14B share WanImageToVideoPipeline: a bare folder is told apart by how many
    experts it fills (and borrows that variant's preset defaults: 50 vs 40 steps)."""
    from spectrum_core.app.presets import load_preset, preset_for_model_dir
    from spectrum_core.models.tiny import tiny_pipeline_dir

    for name in ("wan-i2v", "wan22-i2v"):
        tiny_pipes(name)  # saved into the session's cache
        bare = preset_for_model_dir(tiny_pipeline_dir(name, cache_dir=tiny_cache))
        assert bare.family == name and bare.steps == load_preset(variant(name)[1].preset).steps


# --- Qwen-Image-Edit (-Plus): no tiny model (transformers builds their Qwen2VLProcessor only with torchvision),
# so the pipelines run on prompt embeddings, over the tiny Qwen-Image transformer loaded with from_pretrained.

EDIT = ("qwenimage-edit", "qwenimage-edit-plus")
EDIT_SIZE = 128  # the output: 16 latent tokens; the input image is resized to 1 MP by the pipeline: 1024 tokens


@pytest.fixture(scope="module")
def edit_pipes(tmp_path_factory):
    import diffusers

    from spectrum_core.models.tiny.qwenimage import EDIT_MISSING, build_qwenimage_edit_denoiser

    loaded = {}

    def get(name):
        if name not in loaded:
            pipeline = variant(name)[1].pipeline
            folder = tmp_path_factory.mktemp(name)
            build_qwenimage_edit_denoiser(0, pipeline).save_pretrained(folder)
            loaded[name] = getattr(diffusers, pipeline).from_pretrained(folder, **dict.fromkeys(EDIT_MISSING))
            loaded[name].set_progress_bar_config(disable=True)
        return loaded[name]

    return get


def run_edit(pipe):
    """One seeded edit with true CFG, on fixed cond/uncond prompt embeddings; the steps its loop ran."""
    g = torch.Generator().manual_seed(1)
    embeds = {"prompt_embeds": torch.randn(1, 7, 32, generator=g), "negative_prompt_embeds": torch.randn(1, 5, 32, generator=g)}
    ran = []

    def on_step(_pipe, i, _t, kwargs):
        ran.append(i)
        return kwargs

    out = generate(pipe, None, STEPS, prompt=None, image=inputs("flux-kontext")["image"], true_cfg_scale=4.0,
                   height=EDIT_SIZE, width=EDIT_SIZE, callback_on_step_end=on_step, **embeds)
    return out, len(ran)


@pytest.mark.parametrize("name", EDIT)
def test_qwen_edit_forecasts_latents_and_image_tokens_and_keeps_the_latents(name, edit_pipes):
    pipe = edit_pipes(name)
    n_blocks = len(blocks(pipe.transformer, family_for(pipe.transformer)))
    heads = []
    watch = pipe.transformer.norm_out.register_forward_pre_hook(lambda _m, args: heads.append(args[0].shape[1]))
    counter = BlockCounter(pipe)
    try:
        before, ran = run_edit(pipe)
        full_count, counter.count = counter.count, 0
        with apply_spectrum(pipe, CONFIG) as handle:
            hooked, ran_hooked = run_edit(pipe)
            stats = handle.stats
        hooked_count = counter.count
    finally:
        counter.close()
        watch.remove()
    after, _ = run_edit(pipe)

    latent_tokens, image_tokens = (EDIT_SIZE // 16 // 2) ** 2, (1024 // 16 // 2) ** 2
    assert before.shape[1] == latent_tokens  # what the pipeline keeps of the transformer's output
    assert set(heads) == {latent_tokens + image_tokens}  # the head (and so the forecast) sees both
    assert ran == ran_hooked == STEPS and full_count == STEPS * 2 * n_blocks
    assert stats.nfe_by_branch == {"transformer/cond": NFE, "transformer/uncond": NFE}  # cache contexts cond/uncond
    assert hooked_count == NFE * 2 * n_blocks
    assert np.isfinite(hooked).all() and not np.array_equal(hooked, before)
    assert np.array_equal(after, before)


@pytest.mark.parametrize("name", EDIT)
def test_qwen_edit_presets_check_the_image_before_loading(files, no_loading, name):
    result = cli("gen", "x", "-m", name)
    assert result.exit_code == 2 and f"'{name}' ({variant(name)[1].pipeline}) needs --image" in result.output, result.output
    result = cli("gen", "x", "-m", name, "--image", "in.png", "--strength", "0.5")
    assert result.exit_code == 2 and f"--strength is not used by '{name}'" in result.output, result.output


def test_wan_vace_skips_both_stacks_and_forecasts_the_reference_frame_too(tiny_pipes):
    """WanVACETransformer3DModel runs its vace blocks, then its blocks; both are Spectrum's. The reference
    image's latent frame leads the sequence the head sees (and so the forecast); the pipeline drops it before
    decoding."""
    pipe = tiny_pipes("wan-vace")
    stacks = [stack for stack, _ in blocks(pipe.transformer, family_for(pipe.transformer))]
    assert stacks == ["vace_blocks"] * 2 + ["blocks"] * 2
    heads = []
    watch = pipe.transformer.norm_out.register_forward_pre_hook(lambda _m, args: heads.append(args[0].shape[1]))
    try:
        latents, _ = run(pipe, "wan-vace", steps=4)  # latents as denoised: the reference frame still leads
        video, _ = run(pipe, "wan-vace", steps=4, output_type="np")
    finally:
        watch.remove()
    tokens_per_frame = (latents.shape[3] // 2) * (latents.shape[4] // 2)
    assert latents.shape[2] == 1 + 2 and set(heads) == {3 * tokens_per_frame}  # reference + (5 - 1) / 4 + 1 frames
    assert video.shape[1] == TINY_CALL_KWARGS["wan-vace"]["num_frames"]  # decoded without the reference frame


def test_hunyuan_i2v_true_cfg_branches_without_a_context_and_the_image_frame_kept(tiny_pipes):
    """HunyuanVideoImageToVideoPipeline opens no cache context; with true CFG its two calls per step are told
    apart by their prompt embeddings. The first latent frame is the input image's, which the pipeline keeps
    (it steps frames 1: only): forecasting leaves it as it is and changes the others."""
    pipe = tiny_pipes("hunyuan-i2v")
    cfg = {"true_cfg_scale": 2.0, "negative_prompt": "blurry"}
    plain, _ = run(pipe, "hunyuan-i2v", **cfg)
    with apply_spectrum(pipe, CONFIG) as handle:
        out, ran = run(pipe, "hunyuan-i2v", **cfg)
        stats = handle.stats
    assert ran == STEPS and stats.transformer_calls == 2 * STEPS
    assert stats.nfe_by_branch == {"transformer/cond": NFE, "transformer/uncond": NFE}
    assert np.array_equal(out[:, :, 0], plain[:, :, 0]) and not np.array_equal(out[:, :, 1:], plain[:, :, 1:])


def test_strength_rules_differ_as_the_pipelines_do():
    """FLUX-style pipelines skip int(n - n*s) steps, the SD ones keep int(n*s): 12 at 0.55 runs 7 and 6."""
    flow, keep = variant("flux-img2img")[1], variant("sdxl-img2img")[1]
    assert keep.strength_rule == STRENGTH_KEEP != flow.strength_rule
    assert (steps_run(flow, 12, 0.55), steps_run(keep, 12, 0.55)) == (7, 6)
    assert steps_run(variant("flux-kontext")[1], 12, None) == 12


def test_kontext_true_cfg_branches_are_told_apart_without_a_cache_context(tiny_pipes):
    """FluxKontextPipeline's true CFG makes two calls per step and opens no cache context: the branches are
    named by the prompt embeddings each passes, one state each."""
    pipe = tiny_pipes("flux-kontext")
    with apply_spectrum(pipe, CONFIG) as handle:
        out, ran = run(pipe, "flux-kontext", true_cfg_scale=2.0, negative_prompt="blurry")
        stats = handle.stats
    assert ran == STEPS and np.isfinite(out).all()
    assert stats.nfe_by_branch == {"transformer/cond": NFE, "transformer/uncond": NFE}
    assert stats.transformer_calls == 2 * STEPS


def test_a_second_order_sampler_is_refused_on_img2img(tiny_pipes):
    from diffusers import HeunDiscreteScheduler

    pipe = tiny_pipes("sdxl-img2img")
    scheduler = pipe.scheduler
    pipe.scheduler = HeunDiscreteScheduler.from_config(scheduler.config)
    try:
        with apply_spectrum(pipe, CONFIG):
            with pytest.raises(ValueError, match="order 2"):
                run(pipe, "sdxl-img2img")
    finally:
        pipe.scheduler = scheduler


# --- the command line: --image / --mask / --strength ------------------------------------------------------

@pytest.fixture
def files(tmp_path, monkeypatch, tmp_path_factory):
    """In a fresh folder: an input image, its mask, a mask of another size and a file that is no image."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPECTRUM_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.delenv("SPECTRUM_DEBUG", raising=False)
    inputs("flux-inpaint")["image"].save("in.png")
    inputs("flux-inpaint")["mask_image"].save("mask.png")
    Image.new("L", (48, 32)).save("small_mask.png")
    (tmp_path / "junk.png").write_text("not an image")
    return tmp_path


def cli(*args):
    from typer.testing import CliRunner

    from spectrum_cli.main import app

    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("args, message", [
    (["-m", "tiny-flux", "--image", "in.png"], "--image is not used by 'tiny-flux' (FluxPipeline takes no input image)"),
    (["-m", "tiny-flux-img2img"], "'tiny-flux-img2img' (FluxImg2ImgPipeline) needs --image: the image to start from"),
    (["-m", "tiny-wan-vace"], "'tiny-wan-vace' (WanVACEPipeline) needs --image: the reference image, the subject"),
    (["-m", "tiny-flux-img2img", "--image", "nope.png"], "--image nope.png: no such file."),
    (["-m", "tiny-flux-img2img", "--image", "junk.png"], "--image junk.png is not an image that decodes"),
    (["-m", "tiny-flux-inpaint", "--image", "in.png"], "needs --mask"),
    (["-m", "tiny-flux-inpaint", "--image", "in.png", "--mask", "small_mask.png"], "--mask is 48x32 but --image is 64x64"),
    (["-m", "tiny-flux-kontext", "--image", "in.png", "--strength", "0.5"], "--strength is not used by 'tiny-flux-kontext'"),
    (["-m", "tiny-sdxl-img2img", "--image", "in.png", "--strength", "0"], "--strength must be a number in (0, 1]"),
    (["-m", "tiny-sdxl-img2img", "--image", "in.png", "--strength", "0.05", "--steps", "16"], "runs no step"),
    (["-m", "tiny-flux-img2img", "--image", "in.png", "--strength", "0.5", "--steps", "16", "--nfe", "10"],
     "--nfe 10 is not attainable with the 8 of 16 steps that --strength 0.5 runs and warmup 5: choose 6 to 8."),
])
def test_bad_inputs_are_one_line_and_exit_2_before_loading(files, no_loading, args, message):
    result = cli("gen", "x", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("name", IMAGE_FAMILIES)
def test_each_image_pipeline_checks_its_inputs_before_loading(files, no_loading, name):
    """Every image-input preset refuses a missing --image, and a missing --mask (inpaint) or a --mask it does
    not use, in one line with exit 2, before any model loads."""
    v = variant(name)[1]
    result = cli("gen", "x", "-m", f"tiny-{name}")
    assert result.exit_code == 2 and f"'tiny-{name}' ({v.pipeline}) needs --image" in result.output, result.output
    result = cli("gen", "x", "-m", f"tiny-{name}", "--image", "in.png", *(() if "mask" in v.inputs else ("--mask", "mask.png")))
    expected = "needs --mask" if "mask" in v.inputs else f"--mask is not used by 'tiny-{name}' ({v.pipeline} takes no mask)"
    assert result.exit_code == 2 and expected in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_gen_edits_an_image_and_counts_nfe_over_the_steps_run(files):
    import json

    result = cli("gen", "make it blue", "-m", "tiny-flux-kontext", "--image", "in.png", "--nfe", "8", "--steps", "16",
                 "--json", "-o", "k.png")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout.splitlines()[-1])
    assert rec["nfe"] == 8 and len(rec["real_steps"] + rec["forecast_steps"]) == 16 and rec["image"] == str(files / "in.png")
    result = cli("gen", "a cat", "-m", "tiny-flux-img2img", "--image", "in.png", "--strength", "0.5", "--steps", "16",
                 "--nfe", "6", "--json", "-o", "i.png")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.stdout.splitlines()[-1])
    assert sorted(rec["real_steps"] + rec["forecast_steps"]) == list(range(8))  # 8 of 16 run at strength 0.5
    assert rec["nfe"] == 6 and rec["strength"] == 0.5 and Image.open("i.png").size == (64, 64)
    # the summary says how many of the requested steps ran, and the avoided passes are counted over those
    result = cli("gen", "a cat", "-m", "tiny-flux-img2img", "--image", "in.png", "--strength", "0.5", "--steps", "16",
                 "--nfe", "6", "-o", "i2.png")
    assert result.exit_code == 0, result.output
    assert "8 of 16 (strength 0.5)" in result.output and "2 (25%)" in result.output


def test_batch_lines_carry_image_and_mask_relative_to_the_batch_file(files, no_loading):
    (files / "jobs").mkdir()
    (files / "jobs" / "in.png").write_bytes((files / "in.png").read_bytes())
    (files / "jobs" / "lines.jsonl").write_text('{"prompt": "a", "image": "in.png", "mask": "in.png"}\n'
                                                 '{"prompt": "b", "image": "in.png", "mask": "gone.png"}\n')
    result = cli("batch", "jobs/lines.jsonl", "-m", "tiny-flux-inpaint", "-o", "o")
    assert result.exit_code == 2, result.output
    assert "lines.jsonl:2:" in result.output and "gone.png: no such file" in result.output


def test_batch_runs_image_lines(files):
    import json

    (files / "lines.jsonl").write_text('{"prompt": "a", "image": "in.png", "strength": 0.5}\n'
                                       '{"prompt": "b", "image": "in.png", "strength": 0.8}\n')
    result = cli("batch", "lines.jsonl", "-m", "tiny-sdxl-img2img", "--steps", "16", "--nfe", "6", "--json", "-o", "o")
    assert result.exit_code == 0, result.output
    recs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    runs = {r["prompt"]: len(r["real_steps"] + r["forecast_steps"]) for r in recs if "prompt" in r}
    assert runs == {"a": 8, "b": 12}  # SDXL keeps int(16 * strength) steps
    assert all(r["nfe"] == 6 for r in recs if "prompt" in r)
    assert "8 of 20 steps forecast" in result.output  # over the steps that ran: (8 - 6) + (12 - 6) of 8 + 12
