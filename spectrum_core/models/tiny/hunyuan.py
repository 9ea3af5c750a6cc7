"""Tiny HunyuanVideo: Llama + CLIP text encoders, embedded guidance."""

from __future__ import annotations

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, llama_tokenizer, seeded


def build_hunyuan(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel, LlamaConfig, LlamaModel

    tokenizer, tokenizer_2 = llama_tokenizer(), clip_tokenizer()
    llama_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,  # template (95) + max_sequence_length (256) must fit
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed + 1):
        text_encoder = LlamaModel(llama_config).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModel(clip_text_config(tokenizer_2)).eval()
    return assemble(
        "hunyuan", diffusers.HunyuanVideoPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2
    )

