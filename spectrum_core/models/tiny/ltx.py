"""Tiny LTX-Video: T5 text encoder, causal video VAE, LTXVideoTransformer3DModel with batched CFG."""

from __future__ import annotations

import diffusers

from ._common import assemble, t5_encoder, t5_tokenizer


def build_ltx(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(128)
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    return assemble("ltx", diffusers.LTXPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer)
