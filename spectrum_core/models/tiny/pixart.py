"""Tiny PixArt-Sigma: T5 text encoder, SDXL's 4-channel 8x VAE, PixArtTransformer2DModel (BasicTransformerBlock
blocks, learned sigma: 8 output channels) with CFG as one batch of two and no cache context, and the
checkpoint's DPM-Solver++ scheduler.

The pipeline bins the requested size to its aspect-ratio table for the transformer's ``sample_size`` (32, 64,
128 or 256 latents); the tiny transformer's 8 has no table, so it is called with ``use_resolution_binning=False``.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, t5_encoder, t5_tokenizer


def build_pixart_sigma(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(300)  # the pipeline's max_sequence_length default
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    vae = image_vae(latent_channels=4, scaling_factor=0.13025, shift_factor=None, seed=seed + 2)
    return assemble("pixart-sigma", diffusers.PixArtSigmaPipeline, seed, vae=vae, text_encoder=text_encoder,
                    tokenizer=tokenizer)
