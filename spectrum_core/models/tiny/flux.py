"""Tiny FLUX.1-dev: CLIP + T5 text encoders, guidance-embedded FluxTransformer2DModel."""

from __future__ import annotations

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, image_vae, seeded, t5_encoder, t5_tokenizer


def build_flux(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(clip_text_config(tokenizer)).eval()
    text_encoder_2 = t5_encoder(tokenizer_2, d_model=32, seed=seed + 2)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 3)
    return assemble(
        "flux", diffusers.FluxPipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2
    )

