"""Tiny Latte: T5 text encoder, SDXL's 4-channel 8x image VAE (the pipeline decodes frame by frame),
LatteTransformer3DModel (spatial and temporal BasicTransformerBlock stacks, learned sigma: 8 output channels)
with CFG as one batch of two and no cache context, and a DDIM scheduler.

The transformer's temporal position table is ``video_length`` frames long and every call must have exactly
that many, so the tiny model is built for 5 frames (``video_length`` is also the pipeline's frame argument).
"""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, t5_encoder, t5_tokenizer


def build_latte(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(120)  # the pipeline encodes 120 T5 tokens
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    vae = image_vae(latent_channels=4, scaling_factor=0.18215, shift_factor=None, seed=seed + 2)
    return assemble("latte", diffusers.LattePipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
