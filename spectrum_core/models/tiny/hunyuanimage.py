"""Tiny HunyuanImage-2.1: Qwen2.5-VL text model + ByT5 glyph encoder, HunyuanImage VAE, real CFG by the guider.

The pipeline pads the prompt to 1000 tokens after cropping its system-message template (a hard-coded
``drop_idx`` of 34, Qwen2.5's count, the same system message as Qwen-Image's), so every call attends over
1,000 text tokens whatever the transformer's width. To keep a 50-step call near 1 s on one CPU thread, the
tiny transformer has one head of width 8, no token-refiner layers (the real one has 2, on the text stream
before the blocks) and no ByT5 projection (``text_embed_2_dim`` unset: the pipeline still runs its ByT5
glyph encoder, for quoted text, and the transformer ignores its output; the real one projects it through a
fixed 2048-wide MLP and appends 128 tokens). The VAE's norms have 32 groups, so its blocks are 32 wide; it
compresses 8x here (the real one 32x), which keeps 64x64 at 8x8 latent tokens. The guider is the checkpoint's kind (AdaptiveProjectedMixGuidance): CFG for the first
steps, then adaptive projected guidance, always as two transformer calls per step.
"""

from __future__ import annotations

import inspect

import diffusers

from ._common import assemble, qwen_tokenizer, seeded


def system_template() -> str:
    """The part of the pipeline's prompt template before the prompt (the system message and the user turn)."""
    signature = inspect.signature(diffusers.HunyuanImagePipeline._get_qwen_prompt_embeds)
    return signature.parameters["template"].default.split("{}")[0]


def build_hunyuanimage(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    tokenizer = qwen_tokenizer(system_template())
    text_config = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
        num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
        num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=2048,  # template (34) + tokenizer_max_length (1000) must fit
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed + 1):
        text_encoder = Qwen2_5_VLTextModel(text_config).eval()
    tokenizer_2 = ByT5Tokenizer()  # bytes: no vocabulary to train
    glyph_config = T5Config(
        vocab_size=len(tokenizer_2), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
        relative_attention_num_buckets=8, relative_attention_max_distance=32, feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer_2.pad_token_id, eos_token_id=tokenizer_2.eos_token_id, decoder_start_token_id=0,
    )
    with seeded(seed + 3):
        text_encoder_2 = T5EncoderModel(glyph_config).eval()
    return assemble(
        "hunyuanimage", diffusers.HunyuanImagePipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
    )
