"""Tiny Lumina-Image 2.0: Gemma-2 text model, FLUX.1's 16-channel 8x VAE, Lumina2Transformer2DModel with real CFG
as two calls per step that open no cache context (told apart by the prompt embeddings each call gets).

The pipeline prefixes every prompt with its system prompt; the Gemma tokenizer is trained on it too, so its
words are single tokens. Caption and image tokens are refined apart (``context_refiner``, ``noise_refiner``),
then run as one sequence, caption first, through ``layers`` into ``norm_out``.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, gemma_tokenizer, image_vae, seeded

_TEXT_WIDTH = 32
# Lumina2Pipeline's default system prompt (set in its __init__; tests/test_tiny.py checks it still is).
SYSTEM_PROMPT = ("You are an assistant designed to generate superior images with the superior degree of image-text "
                 "alignment based on textual prompts or user prompts.")


def system_prompt() -> str:
    """The text the pipeline puts before every prompt: its default system prompt and separator."""
    return SYSTEM_PROMPT + " <Prompt Start> "


def build_lumina2(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import Gemma2Config, Gemma2Model

    tokenizer = gemma_tokenizer(system_prompt())
    config = Gemma2Config(
        vocab_size=len(tokenizer), hidden_size=_TEXT_WIDTH, intermediate_size=2 * _TEXT_WIDTH, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024, sliding_window=64,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed + 1):
        text_encoder = Gemma2Model(config).eval()  # the pipeline reads hidden_states[-2]
    vae = image_vae(latent_channels=16, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 2)
    return assemble("lumina2", diffusers.Lumina2Pipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
