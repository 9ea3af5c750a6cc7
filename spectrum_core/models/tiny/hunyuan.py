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



# HunyuanVideo-I2V's Llava prompt encoder puts 576 image tokens (a 24x24 patch grid) where the template has
# `<image>`, at the hard-coded positions 5..581 (image_emb_start/end), and the pipeline drops the template's
# first 103 tokens (crop_start): the tiny tokenizer, trained on that template, splits it into exactly 103
# with `<image>` at position 5. A 48x48 vision input with 2x2 patches gives the 576.
_I2V_IMAGE_SIZE, _I2V_PATCH = 48, 2


def build_hunyuan_i2v(seed: int) -> diffusers.DiffusionPipeline:
    """HunyuanVideo-I2V (token replace): a Llava text encoder (tiny CLIP vision tower + the Llama of
    ``build_hunyuan``'s widths) that reads the prompt with the image, the CLIP text encoder, and a transformer
    with ``image_condition_type="token_replace"``: its token-replace blocks modulate the first latent frame's
    tokens (the input image's, kept fixed by the pipeline) with the timestep-0 embedding."""
    from diffusers.pipelines.hunyuan_video.pipeline_hunyuan_video_image2video import DEFAULT_PROMPT_TEMPLATE
    from transformers import (CLIPImageProcessorPil, CLIPTextModel, CLIPVisionConfig, LlamaConfig, LlavaConfig,
                              LlavaForConditionalGeneration)

    tokenizer, tokenizer_2 = llama_tokenizer(DEFAULT_PROMPT_TEMPLATE["template"], ("<image>",)), clip_tokenizer()
    text = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=3,  # reads hidden_states[-3]
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=_I2V_IMAGE_SIZE, patch_size=_I2V_PATCH, projection_dim=32)
    config = LlavaConfig(vision_config=vision.to_dict(), text_config=text.to_dict(),
                         image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
                         image_seq_length=(_I2V_IMAGE_SIZE // _I2V_PATCH) ** 2, pad_token_id=tokenizer.pad_token_id)
    with seeded(seed + 1):
        text_encoder = LlavaForConditionalGeneration(config).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModel(clip_text_config(tokenizer_2)).eval()
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": _I2V_IMAGE_SIZE},
                                            crop_size={"height": _I2V_IMAGE_SIZE, "width": _I2V_IMAGE_SIZE})
    return assemble(
        "hunyuan-i2v", diffusers.HunyuanVideoImageToVideoPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, image_processor=image_processor,
    )
