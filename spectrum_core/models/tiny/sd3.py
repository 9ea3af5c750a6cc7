"""Tiny SD3.5: two CLIP encoders and T5, SD3Transformer2DModel with batched CFG; and its inpaint pipeline over a
16-channel latent space."""

from __future__ import annotations

from typing import Any

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, image_vae, seeded, t5_encoder, t5_tokenizer


def _text_parts(seed: int) -> dict[str, Any]:
    from transformers import CLIPTextModelWithProjection

    tokenizer, tokenizer_2, tokenizer_3 = clip_tokenizer(), clip_tokenizer(), t5_tokenizer(256)
    with seeded(seed + 1):
        text_encoder = CLIPTextModelWithProjection(clip_text_config(tokenizer)).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer_2)).eval()
    # The two CLIP hidden states (32 + 32) are concatenated and padded to the T5 width.
    text_encoder_3 = t5_encoder(tokenizer_3, d_model=64, seed=seed + 3)
    return dict(text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
                text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3)


def build_sd35(seed: int) -> diffusers.DiffusionPipeline:
    parts = _text_parts(seed)
    vae = image_vae(latent_channels=4, scaling_factor=1.5305, shift_factor=0.0609, seed=seed + 4)
    return assemble("sd3", diffusers.StableDiffusion3Pipeline, seed, vae=vae, **parts)


def build_sd35_inpaint(seed: int) -> diffusers.DiffusionPipeline:
    """StableDiffusion3InpaintPipeline takes a transformer of 16 input channels (SD3's latent space: it blends
    the input image's noised latents in outside the mask after every step) or 33 (latents, mask, masked
    image); the tiny base model's 4 channels are refused, so this one has SD3's 16, the same text encoders."""
    parts = _text_parts(seed)
    vae = image_vae(latent_channels=16, scaling_factor=1.5305, shift_factor=0.0609, seed=seed + 4)
    return assemble("sd3-inpaint", diffusers.StableDiffusion3InpaintPipeline, seed, vae=vae, **parts)
