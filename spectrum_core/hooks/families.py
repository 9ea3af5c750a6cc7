"""What Spectrum needs to know about each model family, as data.

The hooks are generic; everything model-specific lives here: which ModuleLists hold the transformer blocks,
what a block returns (so a skipped block can hand its inputs through in the same shape), which module is the
output head whose input is the forecast tensor, and how a pipeline with several experts splits the steps
between them. Adding a family is adding an entry, not an ``isinstance`` branch in the algorithm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["Family", "FAMILIES", "family_for", "expert_names", "expert_segments", "expert_lengths"]


@dataclass(frozen=True)
class Family:
    """One transformer class's layout.

    Args:
        name: short name used in messages and presets.
        block_stacks: attributes of the transformer holding its blocks (``nn.ModuleList``), in call order.
            Every block in them is skipped on a forecast step.
        block_outputs: the names of a block's return values in order; a skipped block returns its inputs
            of those names. ``("hidden_states",)`` means a block returns a single tensor.
        head: the output-head module whose first argument is the last block's image/video-token output —
            the tensor Spectrum forecasts (METHOD.md §1.1). It runs on every step with the current
            timestep embedding.
    """

    name: str
    block_stacks: tuple[str, ...]
    block_outputs: tuple[str, ...]
    head: str = "norm_out"


FAMILIES: dict[str, Family] = {
    "FluxTransformer2DModel": Family(
        "flux", ("transformer_blocks", "single_transformer_blocks"), ("encoder_hidden_states", "hidden_states")
    ),
    "SD3Transformer2DModel": Family("sd3", ("transformer_blocks",), ("encoder_hidden_states", "hidden_states")),
    "HunyuanVideoTransformer3DModel": Family(
        "hunyuan", ("transformer_blocks", "single_transformer_blocks"), ("hidden_states", "encoder_hidden_states")
    ),
    "WanTransformer3DModel": Family("wan", ("blocks",), ("hidden_states",)),
    "QwenImageTransformer2DModel": Family("qwenimage", ("transformer_blocks",), ("encoder_hidden_states", "hidden_states")),
}


def family_for(transformer: torch.nn.Module) -> Family:
    """The family of ``transformer``, or a ValueError naming the supported classes."""
    cls = type(transformer).__name__
    family = FAMILIES.get(cls)
    if family is None:
        raise ValueError(
            f"Spectrum does not know the transformer class {cls}. Supported: {', '.join(sorted(FAMILIES))}"
        )
    return family


# Denoiser components a pipeline may carry, in the order they take over the steps.
_EXPERT_COMPONENTS = ("transformer", "transformer_2")


def expert_names(pipe: Any) -> list[str]:
    """The pipeline's denoiser components that are present (Wan2.2 A14B has two experts)."""
    return [name for name in _EXPERT_COMPONENTS if getattr(pipe, name, None) is not None]


def expert_segments(pipe: Any, timesteps: torch.Tensor, experts: list[str]) -> dict[str, tuple[int, int]]:
    """Which consecutive steps ``[start, end)`` each expert denoises in a run over ``timesteps``.

    Wan2.2 hands over from ``transformer`` (high noise) to ``transformer_2`` at the first timestep below
    ``boundary_ratio * num_train_timesteps``, as its pipeline does. A single-expert pipeline runs every step.
    """
    n = len(timesteps)
    if len(experts) < 2:
        return {experts[0]: (0, n)} if experts else {}
    ratio = getattr(getattr(pipe, "config", None), "boundary_ratio", None)
    if ratio is None:
        raise ValueError(
            f"{type(pipe).__name__} has {len(experts)} transformers but no boundary_ratio: Spectrum cannot tell "
            "which steps each one denoises"
        )
    boundary = ratio * pipe.scheduler.config.num_train_timesteps
    switch = next((i for i, t in enumerate(timesteps.tolist()) if t < boundary), n)
    segments = {experts[0]: (0, switch), experts[1]: (switch, n)}
    return {name: seg for name, seg in segments.items() if seg[1] > seg[0]}


def expert_lengths(pipe: Any, num_steps: int) -> tuple[int, ...]:
    """How many of ``num_steps`` each expert will denoise, known before the call (for validating an NFE).

    Asks a scratch copy of the pipeline's scheduler for its timesteps, so the pipeline's own scheduler is
    untouched. Schedulers whose timesteps depend on the call (FLUX's resolution-dependent shift) only
    matter here for multi-expert pipelines, which have none.
    """
    experts = expert_names(pipe)
    if len(experts) < 2:
        return (num_steps,)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler.set_timesteps(num_steps)
    segments = expert_segments(pipe, scheduler.timesteps, experts)
    return tuple(end - start for start, end in sorted(segments.values()))
