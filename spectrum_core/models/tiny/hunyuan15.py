"""Tiny HunyuanVideo-1.5: Qwen2.5-VL text model + ByT5 glyph encoder, 16x video VAE, real CFG by the guider.

The pipeline pads the prompt to 1000 tokens after cropping its system-message template (a hard-coded
``crop_start`` of 108, Qwen2.5's count) and adds 729 image-embedding slots and 256 ByT5 slots to the text
stream, and the ByT5 projection is 2048 wide whatever the config: those are fixed by the pipeline and the
transformer, so the tiny transformer is narrow (one head of width 8) and a call still attends over about
2,000 text tokens (a 24-step call takes about 2.3 s on one CPU thread, twice the other tiny video models). The Qwen2 tokenizer is trained on the template, which then splits into
exactly the 108 tokens the pipeline drops.
"""

from __future__ import annotations

import inspect

import diffusers

from ._common import assemble, qwen_tokenizer, seeded


def system_template() -> str:
    """The chat-template prefix the pipeline renders before the prompt (its system message, then the user turn)."""
    signature = inspect.signature(diffusers.HunyuanVideo15Pipeline._get_mllm_prompt_embeds)
    message = signature.parameters["system_message"].default
    return f"<|im_start|>system\n{message}<|im_end|>\n<|im_start|>user\n"


def build_hunyuan15(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    tokenizer = qwen_tokenizer(system_template())
    text_config = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
        num_hidden_layers=3,  # the pipeline reads hidden_states[-3]
        num_attention_heads=2, num_key_value_heads=1,
        max_position_embeddings=2048,  # template (108) + tokenizer_max_length (1000) must fit
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
        "hunyuan15", diffusers.HunyuanVideo15Pipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
    )
