"""Tiny Bria (BRIA-3.2): T5 text encoder, the 8x image VAE with its latents packed 2x2 (the pipeline's scale
factor is 2 ** len(block_out_channels), 16 here as with the real VAE), BriaTransformer2DModel (FLUX-style
dual- then single-stream blocks, no pooled projection, no guidance embedding) with batched CFG."""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, t5_encoder, t5_tokenizer


def build_bria(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer()
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 2)
    return assemble("bria", diffusers.BriaPipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
