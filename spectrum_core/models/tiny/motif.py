"""Tiny Motif-Video: T5Gemma2 text encoder (its toy SigLIP tower unused for text), Wan VAE, MotifVideoTransformer3DModel.

The real transformer has 12 dual-stream, 16 single-stream and 8 decoder layers (the last single-stream
blocks, which re-read the embedded video tokens with the encoder's output as their context) and shared
text cross-attention; the tiny one keeps each kind: 1 dual-stream block, 2 single-stream blocks of which the
last is a decoder layer, cross-attention on. The pipeline feeds the transformer the latents concatenated
with a zero first-frame condition and its mask (2 * z_dim + 1 channels), pads the prompt to 512 tokens, and
runs CFG through its guider as two calls per step in cache_context("pred_cond") / ("pred_uncond"). The
checkpoint's guider class was not checked here; the tiny one is ClassifierFreeGuidance.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, seeded, t5_tokenizer


def _text_encoder(tokenizer, seed: int):
    from transformers import T5Gemma2Encoder
    from transformers.models.t5gemma2.configuration_t5gemma2 import T5Gemma2EncoderConfig, T5Gemma2TextConfig

    vocab = len(tokenizer)
    text = T5Gemma2TextConfig(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, query_pre_attn_scalar=16, max_position_embeddings=1024,
        sliding_window=64, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    text.dropout_rate = 0.0  # set by the encoder-decoder T5Gemma2Config, which the encoder alone does not use
    vision = dict(model_type="siglip_vision_model", hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                  num_attention_heads=2, image_size=28, patch_size=14)
    # Image markers past the text vocabulary, as in Gemma 3 (never produced by the tokenizer).
    config = T5Gemma2EncoderConfig(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                                   boi_token_index=vocab, eoi_token_index=vocab + 1, image_token_index=vocab + 2)
    with seeded(seed):
        return T5Gemma2Encoder(config, eoi_token_index=vocab + 1).eval()


def build_motif(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(512)
    text_encoder = _text_encoder(tokenizer, seed + 1)
    return assemble("motif", diffusers.MotifVideoPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer)
