"""Tiny Z-Image: Qwen3 text encoder, FLUX.1's 8x VAE, single-stream ZImageTransformer2DModel (batched CFG)."""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, qwen3_encoder, qwen_tokenizer

_TEXT_WIDTH = 16


def build_zimage(seed: int) -> diffusers.DiffusionPipeline:
    # The pipeline renders Qwen3's chat template with thinking enabled and reads hidden_states[-2].
    tokenizer = qwen_tokenizer("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n")
    text_encoder = qwen3_encoder(tokenizer, hidden_size=_TEXT_WIDTH, num_layers=2, seed=seed + 1).model
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 2)
    return assemble("zimage", diffusers.ZImagePipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
