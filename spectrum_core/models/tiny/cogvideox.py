"""Tiny CogVideoX (5B layout): T5 text encoder, CogVideoX VAE, rotary CogVideoXTransformer3DModel, DPM."""

from __future__ import annotations

import diffusers

from ._common import assemble, t5_encoder, t5_tokenizer


def build_cogvideox(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(226)
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    # CogVideoX-5B's scheduler: v-prediction DPM with zero-terminal-SNR betas, trailing spacing.
    return assemble("cogvideox", diffusers.CogVideoXPipeline, seed, tokenizer=tokenizer, text_encoder=text_encoder)
