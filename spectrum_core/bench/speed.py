"""Speed: wall-clock of the full 50-step call against each accelerated call, next to its Amdahl limit.

The tiny fidelity models spend most of their time outside the transformer blocks (text encoders, VAE,
Python overhead), unlike real models, so speed is measured on a real ``FluxPipeline`` whose transformer is
a mid-size random-weight ``FluxTransformer2DModel`` (the other components are the tiny ones, so the blocks
dominate, as they do for FLUX.1 at 1024²). Protocol: one short warm-up call, then ``repeats`` rounds, each
running the baseline and every method once in the same order; the median of each is reported.

The speedup is the median over rounds of (baseline seconds / method seconds) within a round; the ratio of
the medians and of the minimums are kept in results.json too. On a machine shared with other jobs the
50-step call, being the longest, is the likeliest to be slowed by a load spike, which inflates a ratio of
medians; the per-round ratio is robust to that when spikes hit a minority of rounds.

The limit next to each speedup is Amdahl's law with the measured share ``p`` of the baseline call spent
inside the block stacks (first block's start to last block's end, per transformer call) and the counted
real passes: ``1 / ((1 - p) + p · nfe / 50)``. ``measured / limit`` says how much of the attainable
speedup the implementation delivers; the rest is forecaster and hook overhead (and timing noise).
"""

from __future__ import annotations

import statistics
from typing import Any, Callable

import torch

from ..method.config import SpectrumConfig
from ..hooks.stats import sync_clock
from .methods import STEPS, Applied, Method, PassCounter, _enable, _ours

# Transformer sizes. tokens = (side / 16)² image tokens (VAE 8x, 2x2 patch packing) + 8 text tokens.
SIZES = {
    "quick": {"hidden": 256, "heads": 4, "double": 2, "single": 4, "side": 256},
    "full": {"hidden": 384, "heads": 6, "double": 2, "single": 4, "side": 384},
}
TEXT_TOKENS = 8


def build_pipeline(size: dict[str, int], seed: int = 0) -> Any:
    """The tiny FLUX pipeline with its transformer replaced by a mid-size random one of ``size``."""
    import diffusers

    from ..models.tiny import build_tiny_pipeline

    pipe = build_tiny_pipeline("flux", seed=seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        transformer = diffusers.FluxTransformer2DModel(
            patch_size=1, in_channels=16, num_layers=size["double"], num_single_layers=size["single"],
            attention_head_dim=size["hidden"] // size["heads"], num_attention_heads=size["heads"],
            joint_attention_dim=pipe.transformer.config.joint_attention_dim,
            pooled_projection_dim=pipe.transformer.config.pooled_projection_dim,
            guidance_embeds=True, axes_dims_rope=_rope_axes(size["hidden"] // size["heads"]),
        ).eval()
    pipe.transformer = transformer
    pipe.register_modules(transformer=transformer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _rope_axes(head_dim: int) -> tuple[int, int, int]:
    # FLUX.1 uses (16, 56, 56) for head_dim 128; keep its proportions, each axis even.
    a = max(2, (head_dim // 8) // 2 * 2)
    b = (head_dim - a) // 2 // 2 * 2
    return (head_dim - 2 * b, b, b)


class BlockTimer:
    """Seconds spent inside the block stacks: first block's start to last block's end, per call."""

    def __init__(self, transformer: torch.nn.Module):
        from ..hooks.families import family_for

        blocks = [b for stack in family_for(transformer).block_stacks for b in getattr(transformer, stack)]
        self.seconds = 0.0
        self._start: float | None = None
        self._handles = [blocks[0].register_forward_pre_hook(self._pre), blocks[-1].register_forward_hook(self._post)]

    def _pre(self, *_: Any) -> None:
        self._start = sync_clock()

    def _post(self, *_: Any) -> None:
        if self._start is not None:
            self.seconds += sync_clock() - self._start
            self._start = None

    def close(self) -> None:
        for h in self._handles:
            h.remove()


def speed_methods(quick: bool) -> list[Method]:
    from diffusers import TaylorSeerCacheConfig

    out = [
        Method("spectrum w=1", "spectrum", 14, {"nfe": 14}, _ours(SpectrumConfig(nfe=14, blend=1.0))),
        Method("spectrum w=1", "spectrum", 10, {"nfe": 10}, _ours(SpectrumConfig(nfe=10, blend=1.0))),
    ]
    if quick:
        return out
    for budget, interval in ((14, 4), (10, 6)):
        cfg = SpectrumConfig(forecaster="taylor", interval=interval, warmup=3)
        out.append(Method(f"TaylorSeer N={interval} O=1", "taylorseer", budget, cfg.to_dict(), _ours(cfg)))
    for budget, (before, interval) in ((14, (2, 4)), (10, (3, 7))):
        settings = dict(cache_interval=interval, disable_cache_before_step=before, max_order=1, use_lite_mode=True)
        out.append(Method("diffusers TaylorSeerCache lite O=1", "diffusers", budget, settings,
                          _enable(lambda s=settings: TaylorSeerCacheConfig(**s, taylor_factors_dtype=torch.float32))))
    return out


def _call(pipe: Any, side: int) -> None:
    pipe("a red circle on a navy background", num_inference_steps=STEPS, height=side, width=side,
         guidance_scale=3.5, max_sequence_length=TEXT_TOKENS, generator=torch.Generator().manual_seed(0),
         output_type="pil")


def run_speed(quick: bool, repeats: int | None = None, size_name: str | None = None,
              log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    size_name = size_name or ("quick" if quick else "full")
    repeats = repeats or (3 if quick else 5)
    size = SIZES[size_name]
    pipe = build_pipeline(size)
    side = size["side"]
    methods = speed_methods(quick)
    params = sum(p.numel() for p in pipe.transformer.parameters())
    # warm-up: allocator, lazy imports, first-call costs
    pipe("warm up", num_inference_steps=2, height=side, width=side, max_sequence_length=TEXT_TOKENS,
         output_type="pil")

    base_times: list[float] = []
    block_shares: list[float] = []
    times: dict[str, list[float]] = {m.key: [] for m in methods}
    nfes: dict[str, list[float]] = {m.key: [] for m in methods}
    counter = PassCounter(pipe)
    try:
        for r in range(repeats):
            timer = BlockTimer(pipe.transformer)
            counter.reset()
            t0 = sync_clock()
            _call(pipe, side)
            elapsed = sync_clock() - t0
            timer.close()
            base_times.append(elapsed)
            block_shares.append(timer.seconds / elapsed)
            log(f"  speed round {r + 1}/{repeats}: 50-step call {elapsed:.2f} s, {100 * timer.seconds / elapsed:.1f}% "
                f"in blocks, {counter.nfe():g} real passes")
            for method in methods:
                applied: Applied = method.apply(pipe)
                counter.reset()
                try:
                    t0 = sync_clock()
                    _call(pipe, side)
                    elapsed = sync_clock() - t0
                finally:
                    applied.remove()
                times[method.key].append(elapsed)
                nfes[method.key].append(counter.nfe())
                log(f"    {method.key}: {elapsed:.2f} s, {counter.nfe():g} real passes")
    finally:
        counter.close()

    base = statistics.median(base_times)
    p = statistics.median(block_shares)
    rows = []
    for method in methods:
        t = statistics.median(times[method.key])
        nfe = statistics.median(nfes[method.key])
        # Each round's baseline and method ran minutes apart at most, so their ratio cancels slow load drift;
        # the median over rounds drops a round hit by a load spike (others' jobs share the CPU).
        paired = [b / m for b, m in zip(base_times, times[method.key])]
        speedup = statistics.median(paired)
        limit = 1.0 / ((1.0 - p) + p * nfe / STEPS)
        rows.append({"method": method.name, "group": method.group, "budget": method.budget, "nfe": nfe,
                     "nfe_exact": len(set(nfes[method.key])) == 1, "seconds": t, "seconds_all": times[method.key],
                     "speedup": speedup, "speedup_all_rounds": paired,
                     "speedup_of_medians": base / t, "speedup_of_minimums": min(base_times) / min(times[method.key]),
                     "amdahl_limit": limit, "ratio_to_limit": speedup / limit, "nfe_speedup": STEPS / nfe})
    return {
        "model": f"FluxPipeline with a random-weight FluxTransformer2DModel (hidden {size['hidden']}, "
                 f"{size['heads']} heads, {size['double']} double + {size['single']} single blocks, "
                 f"{params / 1e6:.1f} M params), {side}x{side} px = {(side // 16) ** 2} image + {TEXT_TOKENS} text "
                 "tokens; tiny text encoders and VAE",
        "size": {**size, "params": params, "image_tokens": (side // 16) ** 2, "text_tokens": TEXT_TOKENS},
        "repeats": repeats,
        "baseline_seconds": base,
        "baseline_seconds_all": base_times,
        "block_share": p,
        "block_share_all": block_shares,
        "rows": rows,
    }
