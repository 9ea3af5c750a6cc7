"""Tiny Chroma: T5 text encoder, FLUX.1's 8x VAE, ChromaTransformer2DModel (real CFG, two calls per step)."""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, t5_encoder, t5_tokenizer


def build_chroma(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer()
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 2)
    return assemble("chroma", diffusers.ChromaPipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
