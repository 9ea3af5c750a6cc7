"""Tiny FLUX.2 Klein (base): Qwen3 text encoder, FLUX.2 VAE, Flux2Transformer2DModel with real CFG.

FLUX.2 dev shares the transformer class but encodes prompts with Mistral-3 (a vision-language model with
its own processor); the Klein pipeline exercises the same transformer, blocks and head.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, qwen3_encoder, qwen_tokenizer

_TEXT_WIDTH = 16
# The pipeline stacks the text encoder's hidden states 9, 18 and 27 (Qwen3-4B has 36 layers).
_TEXT_LAYERS = 28


def build_flux2_klein(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = qwen_tokenizer("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    text_encoder = qwen3_encoder(tokenizer, hidden_size=_TEXT_WIDTH, num_layers=_TEXT_LAYERS, seed=seed + 1)
    return assemble(
        "flux2", diffusers.Flux2KleinPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        is_distilled=False
    )
