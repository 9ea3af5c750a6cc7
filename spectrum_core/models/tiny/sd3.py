"""Tiny SD3.5: two CLIP encoders and T5, SD3Transformer2DModel with batched CFG."""

from __future__ import annotations

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, image_vae, seeded, t5_encoder, t5_tokenizer


def build_sd35(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(), t5_tokenizer(256)
    with seeded(seed + 1):
        text_encoder = CLIPTextModelWithProjection(clip_text_config(tokenizer)).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer_2)).eval()
    # The two CLIP hidden states (32 + 32) are concatenated and padded to the T5 width.
    text_encoder_3 = t5_encoder(tokenizer_3, d_model=64, seed=seed + 3)
    vae = image_vae(latent_channels=4, scaling_factor=1.5305, shift_factor=0.0609, seed=seed + 4)
    return assemble(
        "sd3", diffusers.StableDiffusion3Pipeline, seed, vae=vae, text_encoder=text_encoder,
        tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3
    )

