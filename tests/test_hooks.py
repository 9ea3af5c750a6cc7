"""The hooks' contract, run on a tiny real pipeline of every family (FLUX, SD3.5, HunyuanVideo, Wan2.1, Wan2.2)."""

import numpy as np
import pytest
import torch

from conftest import ALL_FAMILIES, generate, psnr
from spectrum_core import SpectrumConfig, apply_spectrum, nfe_bounds
from spectrum_core.hooks.families import SKIP_PLACEHOLDERS, blocks, expert_names, family_for, variant
from spectrum_core.method.forecasters import ChebyshevForecaster

def _branches(name):
    """The per-branch labels a family's pipeline produces, from the registry: one per cache context the
    pipeline opens (a batched pair, in one context or none, is one state); a pipeline that opens none but
    makes separate calls (Chroma) has its branches named by the tensor the family's branch_argument gets."""
    fam, var = variant(name)
    contexts = var.contexts or (("cond", "uncond") if fam.branch_argument else ())
    suffixes = [f"/{ctx}" for ctx in contexts] or [""]
    return [f"{c}{suffix}" for c in fam.components[: var.experts] for suffix in suffixes]


BRANCHES = {name: _branches(name) for name in ALL_FAMILIES}
CFG_CALLS = {name: variant(name)[1].calls_per_step for name in ALL_FAMILIES}  # transformer calls per step


def budget(pipe, steps, wanted):
    """``wanted`` real passes, raised to the floor of what the pipeline can attain (Wan2.2: two warm-ups)."""
    lo, hi = nfe_bounds(pipe, steps)
    assert lo < steps, "the test needs at least one forecast step"
    return max(lo, min(wanted, hi))


def experts(pipe):
    """The pipeline's denoisers (transformers, or SDXL's UNet)."""
    return [getattr(pipe, name) for name in expert_names(pipe)]


# Block submodules the transformer also calls itself, outside the block: DiT's head computes its conditioning
# with the first block's norm1.emb on every step, forecast or not, so they cannot tell a block's real passes.
CALLED_OUTSIDE = {"dit": "norm1.emb"}


class BlockCounter:
    """Counts transformer-block executions through a leaf module inside each block.

    A hooked block's own forward hooks fire even when it is skipped, so the count watches the first
    parametrised submodule, which runs only when the block really computes.
    """

    def __init__(self, pipe):
        self.count = 0
        self.handles = []
        for module in experts(pipe):
            for _, block in blocks(module, family_for(module)):
                outside = CALLED_OUTSIDE.get(family_for(module).name, "-")
                leaf = next(m for name, m in block.named_modules()
                            if m is not block and list(m.parameters(recurse=False)) and not name.startswith(outside))
                self.handles.append(leaf.register_forward_hook(self._hit))

    def _hit(self, *_):
        self.count += 1

    def close(self):
        for h in self.handles:
            h.remove()


@pytest.fixture(params=ALL_FAMILIES)
def family(request):
    return request.param


@pytest.fixture
def pipe(family, tiny_pipes):
    return tiny_pipes(family)


def test_block_calls_are_exactly_real_passes_times_blocks(family, pipe):
    counter = BlockCounter(pipe)
    try:
        generate(pipe, family, 20)
        per_step = counter.count / 20  # every branch and every block of one step
        counter.count = 0
        nfe = budget(pipe, 20, 9)
        with apply_spectrum(pipe, SpectrumConfig(nfe=nfe)) as handle:
            generate(pipe, family, 20)
            stats = handle.stats
    finally:
        counter.close()
    assert stats.nfe == nfe
    assert len(stats.forecast_steps) == 20 - nfe
    blocks_per_call = per_step / CFG_CALLS[family]
    assert sum(stats.nfe_by_branch.values()) == nfe * CFG_CALLS[family]
    assert counter.count == nfe * CFG_CALLS[family] * blocks_per_call
    assert counter.count < per_step * 20


def test_remove_restores_bit_identical_output(family, pipe):
    before = generate(pipe, family, 12)
    handle = apply_spectrum(pipe, SpectrumConfig(nfe=budget(pipe, 12, 7)))
    try:
        hooked = generate(pipe, family, 12)
    finally:
        handle.remove()
    after = generate(pipe, family, 12)
    assert not np.array_equal(hooked, before)  # the hooks did change something
    assert np.array_equal(after, before)


def test_consecutive_calls_are_deterministic_and_step_count_comes_from_the_call(family, pipe):
    nfe = max(budget(pipe, 16, 8), budget(pipe, 24, 8))
    with apply_spectrum(pipe, nfe=nfe) as handle:
        first = generate(pipe, family, 16)
        second = generate(pipe, family, 16)
        other = generate(pipe, family, 24)
        assert [s.num_steps for s in handle.history] == [16, 16, 24]
        assert [s.nfe for s in handle.history] == [nfe, nfe, nfe]
        short, long_ = handle.history[0], handle.history[2]
    assert np.array_equal(first, second)
    # The 24-step call planned its own schedule over its own steps, not the 16-step one.
    assert sorted(short.real_steps + short.forecast_steps) == list(range(16))
    assert sorted(long_.real_steps + long_.forecast_steps) == list(range(24))
    assert long_.real_steps != short.real_steps
    assert not np.array_equal(other, first)


def test_branches_and_experts_have_separate_state(family, pipe):
    seen = {}

    def watch(event):
        hooks = pipe_hooks()
        for expert, hook in hooks.items():
            for name, state in hook.state_manager.branches.items():
                seen[(expert, name)] = (id(state.forecaster), state.forecaster.num_updates)

    nfe = budget(pipe, 30, 12)
    with apply_spectrum(pipe, nfe=nfe) as handle:
        pipe_hooks = lambda: handle._session.model_hooks  # noqa: E731
        handle.subscribe(watch)
        generate(pipe, family, 30)
        stats = handle.stats
    assert sorted(stats.nfe_by_branch) == sorted(BRANCHES[family])
    assert len({forecaster for forecaster, _ in seen.values()}) == len(BRANCHES[family])
    per_branch = {}
    for label, n in stats.nfe_by_branch.items():
        per_branch.setdefault(label.split("/")[-1], 0)
        per_branch[label.split("/")[-1]] += n
    assert set(per_branch.values()) == {nfe}  # the NFE budget covers both experts, per CFG branch
    assert stats.nfe == nfe


def test_wan22_second_expert_restarts_with_its_own_warmup(tiny_pipes):
    pipe = tiny_pipes("wan22")
    with apply_spectrum(pipe, SpectrumConfig(alpha=0.75, warmup=4)) as handle:
        generate(pipe, "wan22", 50)
        stats = handle.stats
    start, end = stats.schedule["transformer_2"]["segment"]
    assert 0 < start < end == 50
    assert set(range(start, start + 4)) <= set(stats.real_steps)
    assert set(range(0, 4)) <= set(stats.real_steps)
    assert stats.forecast_steps  # and it does forecast within both segments
    assert any(s < start for s in stats.forecast_steps) and any(s > start for s in stats.forecast_steps)


def test_state_resets_after_a_call_that_raised(family, pipe):
    nfe = budget(pipe, 16, 8)
    with apply_spectrum(pipe, nfe=nfe) as handle:
        clean = generate(pipe, family, 16)

        calls = []

        def boom(*_):  # an interrupt in step 9, from the denoiser (HunyuanVideo-1.5 takes no step callback)
            calls.append(1)
            if len(calls) > 9 * CFG_CALLS[family]:
                raise KeyboardInterrupt

        interrupts = [module.register_forward_pre_hook(boom) for module in experts(pipe)]
        try:
            with pytest.raises(KeyboardInterrupt):
                generate(pipe, family, 16)
        finally:
            for interrupt in interrupts:
                interrupt.remove()
        again = generate(pipe, family, 16)
        assert handle.stats.nfe == nfe
    assert np.array_equal(clean, again)


def test_nfe_out_of_range_is_a_clear_error(family, pipe):
    lo, hi = nfe_bounds(pipe, 20)
    with apply_spectrum(pipe, nfe=lo - 1) as handle:
        with pytest.raises(ValueError, match=f"choose {lo} to {hi}"):
            generate(pipe, family, 20)
        assert handle.stats is None or handle.stats.transformer_calls == 0


def test_double_apply_is_refused(pipe):
    with apply_spectrum(pipe):
        with pytest.raises(RuntimeError, match="already applied"):
            apply_spectrum(pipe)


def test_non_finite_forecasts_fall_back_to_real_passes(family, pipe, monkeypatch):
    base = generate(pipe, family, 12)
    monkeypatch.setattr(ChebyshevForecaster, "predict", lambda self, tau: torch.full_like(self._moments[0], float("nan")))
    nfe = budget(pipe, 12, 7)
    with apply_spectrum(pipe, nfe=nfe) as handle:
        out = generate(pipe, family, 12)
        stats = handle.stats
    assert stats.nfe == 12 and stats.fallbacks == (12 - nfe) * CFG_CALLS[family]
    assert np.array_equal(out, base)


@pytest.mark.parametrize("blend", [1.0, 0.5])
def test_spectrum_is_closer_to_full_sampling_than_reuse(family, pipe, blend):
    # Plumbing check on random weights (fidelity proper is benchmarked on the trained embedded model).
    if family == "zimage":
        # On random weights the ordering is a coin flip for the tiny Z-Image: at 14 of 50, Chebyshev beat
        # reuse for one of three weight seeds (w=1: 37.5/35.8/38.7 dB vs 38.0/34.9/39.2; measured here).
        pytest.skip("Chebyshev vs reuse on the random tiny Z-Image depends on the weight seed (see comment)")
    if family == "cogvideox" and blend == 1.0:
        # CogVideoX's v-prediction DPM sampler on random weights: a pure degree-4 fit scored 34.2 dB against
        # reuse's 35.3 dB at 14 of 50 (measured here); the preset's w=0.5 is checked below.
        pytest.skip("pure Chebyshev at 14/50 is not expected to beat reuse on the tiny CogVideoX (see comment)")
    if family == "wan22" and blend == 1.0:
        # At 14 of 50 the high-noise expert (16 steps) gets only its 5 warm-up passes and one more, then
        # forecasts 9 steps; a pure degree-4 fit extrapolates worse than reuse there on this random model.
        # The reference scripts' w=0.5 (the wan22 preset's) is checked below.
        pytest.skip("pure Chebyshev at 14/50 is not expected to beat reuse on the tiny Wan2.2 (see comment)")
    if family == "dit" and blend == 1.0:
        # DiT's pipeline has no latent output: the comparison is of images decoded by the random VAE and
        # clamped; a pure degree-4 fit scored 54.8 dB against reuse's 56.2 dB at 14 of 50 (measured here).
        # The preset's w=0.5 is checked below.
        pytest.skip("pure Chebyshev at 14/50 is not expected to beat reuse on the tiny DiT (see comment)")
    full = generate(pipe, family, 50)
    scores = {}
    nfe = budget(pipe, 50, 14)
    for forecaster in ("chebyshev", "reuse"):
        with apply_spectrum(pipe, SpectrumConfig(forecaster=forecaster, nfe=nfe, blend=blend)) as handle:
            scores[forecaster] = psnr(generate(pipe, family, 50), full)
            assert handle.stats.nfe == nfe
    assert np.isfinite(scores["chebyshev"])
    assert scores["chebyshev"] > scores["reuse"], scores


def test_stats_report_time_and_steps(pipe, family):
    events = []
    with apply_spectrum(pipe, nfe=budget(pipe, 16, 8)) as handle:
        handle.subscribe(events.append)
        generate(pipe, family, 16)
        stats = handle.stats
    assert sorted(set(stats.real_steps) | set(stats.forecast_steps)) == list(range(16))
    assert stats.transformer_calls == len(events) == 16 * CFG_CALLS[family]
    assert 0 < stats.real_call_seconds <= stats.transformer_seconds <= stats.denoise_seconds <= stats.call_seconds
    assert stats.estimated_full_seconds > stats.denoise_seconds
    assert [e.step for e in events if e.real][:1] == [0]


@pytest.mark.parametrize("horizon, expected", [(None, lambda s: 2 * s / 28 - 1), (50, lambda s: s / 25 - 1)])
def test_tau_spans_the_call_or_the_reference_horizon(tiny_pipes, monkeypatch, horizon, expected):
    pipe = tiny_pipes("flux")
    seen = []
    original = ChebyshevForecaster.update
    monkeypatch.setattr(ChebyshevForecaster, "update", lambda self, tau, h: (seen.append(tau), original(self, tau, h)))
    with apply_spectrum(pipe, nfe=10, tau_horizon=horizon) as handle:
        generate(pipe, "flux", 28)
        steps = handle.stats.real_steps
    assert seen == pytest.approx([expected(s) for s in steps])


def test_bf16_pipeline_keeps_compact_float16_moments(tiny_cache):
    # bf16 features: the moments are stored in scaled float16 (arithmetic in float32; see ChebyshevForecaster)
    from spectrum_core.models.tiny import load_tiny_pipeline

    pipe = load_tiny_pipeline("flux", cache_dir=tiny_cache, torch_dtype=torch.bfloat16)
    pipe.set_progress_bar_config(disable=True)
    dtypes = set()
    with apply_spectrum(pipe, nfe=8) as handle:
        states = handle._session.model_hooks["transformer"].state_manager.branches
        handle.subscribe(lambda e: dtypes.update(s.forecaster._moments.dtype for s in states.values()))
        out = generate(pipe, "flux", 20)
        assert handle.stats.nfe == 8
    assert dtypes == {torch.float16}
    assert np.isfinite(out).all()


# What each family's blocks return, in order (a skipped block hands its inputs through in this shape), per
# block stack where the stacks differ.
_EH, _HE, _H = ("encoder_hidden_states", "hidden_states"), ("hidden_states", "encoder_hidden_states"), ("hidden_states",)
BLOCK_OUTPUTS = {
    "flux": _EH, "sd35": _EH, "hunyuan": _HE, "wan": _H, "wan22": _H, "wan22-5b": _H, "qwenimage": _EH,
    "flux2-klein": {"transformer_blocks": _EH, "single_transformer_blocks": _H},
    "flux2": {"transformer_blocks": _EH, "single_transformer_blocks": _H}, "ltx": _H, "cogvideox": _HE,
    "chroma": {"transformer_blocks": _EH, "single_transformer_blocks": _H},
    "zimage": ("x",),  # the family's own word: the registry lists the block but with `hidden_states`
    "hunyuan15": _HE,
    "mochi": _HE,
    "ltx2": ("hidden_states", "audio_hidden_states"),
    "cogview4": _HE,
    "lumina2": _H,
    "pixart-sigma": _H,  # BasicTransformerBlock
    "latte": _H,  # BasicTransformerBlock, spatial and temporal
    "dit": _H,  # BasicTransformerBlock (adaLN-zero)
    "hunyuanimage": _HE,
    "kandinsky5": {"text_transformer_blocks": ("x",), "visual_transformer_blocks": ("visual_embed",)},
    "motif": _HE,
    "cosmos3": ("und_seq", "gen_seq"),  # the prompt stream, then the generation stream
    "bria": _EH,  # the family's word for both stacks (see test_bria_blocks_return_both_streams)
}
# Families whose block classes diffusers' registry does not list: their layout is the family's own data.
# (A family name, or a (family, stack) pair where only one stack is unlisted.)
UNLISTED = {"chroma", "hunyuan15", "ltx2", "lumina2", ("bria", "single_transformer_blocks"),
            ("kandinsky5", "text_transformer_blocks")}
# Families whose skipped blocks answer with placeholders shaped like their last real output.
PLACEHOLDERS = {"sdxl"}


def test_block_layout_is_read_from_diffusers_registry(family, pipe):
    """The hand-through layout comes from diffusers' TransformerBlockRegistry; this fails loudly (instead of
    falling back silently) if diffusers moves the registry or stops listing a block class we rely on — or
    starts listing one whose layout we declare ourselves."""
    from diffusers.hooks._helpers import TransformerBlockRegistry

    from spectrum_core.hooks.families import block_outputs

    for module in experts(pipe):
        fam = family_for(module)
        if fam.block_skip == SKIP_PLACEHOLDERS:  # the UNet's blocks hand nothing through
            assert family in PLACEHOLDERS
            continue
        for stack in fam.block_stacks:
            expected = BLOCK_OUTPUTS[family]
            expected = expected[stack] if isinstance(expected, dict) else expected
            for block in getattr(module, stack):
                if family in UNLISTED or (family, stack) in UNLISTED:
                    with pytest.raises(ValueError, match="not registered"):
                        TransformerBlockRegistry.get(type(block))
                else:
                    TransformerBlockRegistry.get(type(block))  # raises ValueError if not listed
                assert block_outputs(block, fam, stack) == expected


def test_bria_blocks_return_both_streams_whatever_the_registry_says(tiny_pipes):
    """diffusers' registry lists BriaTransformerBlock as returning hidden_states alone; both Bria block kinds
    return (encoder_hidden_states, hidden_states), which is what the family declares and a skipped block
    hands through (a single-tensor answer would be unpacked wrongly by the transformer's loop)."""
    from diffusers.hooks._helpers import TransformerBlockRegistry

    from spectrum_core.hooks.families import block_outputs

    pipe = tiny_pipes("bria")
    module = pipe.transformer
    meta = TransformerBlockRegistry.get(type(module.transformer_blocks[0]))
    assert meta.return_encoder_hidden_states_index is None  # the registry's (wrong) word
    outputs = {}

    def record(i):
        def hook(mod, args, kwargs, out):  # returns None: a value would replace the block's output
            outputs.setdefault(i, (kwargs, out))
        return hook

    hooks_ = [blk.register_forward_hook(record(i), with_kwargs=True)
              for i, blk in enumerate([module.transformer_blocks[0], module.single_transformer_blocks[0]])]
    try:
        generate(pipe, "bria", 1)
    finally:
        for h in hooks_:
            h.remove()
    fam = family_for(module)
    for i, stack in enumerate(("transformer_blocks", "single_transformer_blocks")):
        kwargs, out = outputs[i]
        names = block_outputs(getattr(module, stack)[0], fam, stack)
        assert names == ("encoder_hidden_states", "hidden_states")
        assert isinstance(out, tuple) and len(out) == 2
        assert [o.shape for o in out] == [kwargs[n].shape for n in names]
        assert out[0].shape != out[1].shape  # text and image tokens differ in number: the order is checked


def test_a_subclass_of_a_known_transformer_is_recognised():
    """Families are matched by class, not by class-name string: a user's subclass keeps its family."""
    from diffusers import WanTransformer3DModel

    class MyWan(WanTransformer3DModel):
        pass

    model = MyWan(num_attention_heads=2, attention_head_dim=8, in_channels=4, out_channels=4, text_dim=16,
                  freq_dim=16, ffn_dim=16, num_layers=1, rope_max_seq_len=32)
    assert family_for(model).name == "wan"
    with pytest.raises(ValueError, match="does not know the transformer class Linear"):
        family_for(torch.nn.Linear(2, 2))
