"""Tiny Mochi: T5 text encoder, Mochi VAE (its 12 latent channels and 32-group norms are fixed by the
pipeline and the VAE), MochiTransformer3DModel with batched CFG."""

from __future__ import annotations

import diffusers

from ._common import assemble, t5_encoder, t5_tokenizer


def build_mochi(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(256)
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    return assemble("mochi", diffusers.MochiPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer)
