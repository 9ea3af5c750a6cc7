"""Tiny HunyuanImage-2.1: Qwen2.5-VL text model + ByT5 glyph encoder, HunyuanImage VAE, real CFG by the guider.

The pipeline pads the prompt to 1000 tokens after cropping its system-message template (a hard-coded
``drop_idx`` of 34, Qwen2.5's count, the same system message as Qwen-Image's), so every call attends over
1,000 text tokens whatever the transformer's width. To keep a 50-step call near 1 s on one CPU thread, the
tiny transformer has one head of width 8, no token-refiner layers (the real one has 2, on the text stream
before the blocks) and no ByT5 projection (``text_embed_2_dim`` unset: the pipeline still runs its ByT5
glyph encoder, for quoted text, and the transformer ignores its output; the real one projects it through a
fixed 2048-wide MLP and appends 128 tokens). The VAE's norms have 32 groups, so its blocks are 32 wide; it
compresses 8x here (the real one 32x), which keeps 64x64 at 8x8 latent tokens. The guider is the checkpoint's kind (AdaptiveProjectedMixGuidance): CFG for the first
steps, then adaptive projected guidance, always as two transformer calls per step.
"""

from __future__ import annotations

import inspect

import diffusers

from ._common import assemble, hunyuan_text_encoders


def system_template() -> str:
    """The part of the pipeline's prompt template before the prompt (the system message and the user turn)."""
    signature = inspect.signature(diffusers.HunyuanImagePipeline._get_qwen_prompt_embeds)
    return signature.parameters["template"].default.split("{}")[0]


def build_hunyuanimage(seed: int) -> diffusers.DiffusionPipeline:
    return assemble("hunyuanimage", diffusers.HunyuanImagePipeline, seed, **hunyuan_text_encoders(system_template(), seed))
