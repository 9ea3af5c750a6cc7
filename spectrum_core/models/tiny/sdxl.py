"""Tiny SDXL: two CLIP text encoders (one with projection), the 8x VAE, a two-level UNet2DConditionModel
with SDXL's text-time conditioning, Euler; CFG as one batch of two."""

from __future__ import annotations

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, image_vae, seeded

_TIME_IDS_WIDTH = 8  # SDXL adds six time ids (size, crop, target size), each embedded at this width


def build_sdxl(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(clip_text_config(tokenizer)).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer_2)).eval()
    vae = image_vae(latent_channels=4, scaling_factor=0.13025, shift_factor=None, seed=seed + 3)
    return assemble(
        "sdxl", diffusers.StableDiffusionXLPipeline, seed, vae=vae, text_encoder=text_encoder,
        text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer_2
    )
