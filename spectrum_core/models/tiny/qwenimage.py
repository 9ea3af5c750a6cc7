"""Tiny Qwen-Image: Qwen2.5-VL text encoder (toy vision tower), Qwen-Image VAE, QwenImageTransformer2DModel."""

from __future__ import annotations

import diffusers

from ._common import qwen_tokenizer, seeded

# The pipeline's prompt template; its first 34 tokens (Qwen2's count) are dropped after encoding.
_TEMPLATE = (
    "<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, text, spatial "
    "relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n"
)


def _text_encoder(tokenizer, seed: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    text = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=1024,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=32,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0])
    config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, vocab_size=len(tokenizer), bos_token_id=None)
    with seeded(seed):
        return Qwen2_5_VLForConditionalGeneration(config).eval()


def build_qwenimage(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = qwen_tokenizer(_TEMPLATE)
    text_encoder = _text_encoder(tokenizer, seed + 1)
    z_dim = 4
    with seeded(seed + 2):
        vae = diffusers.AutoencoderKLQwenImage(
            base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
            latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
        ).eval()
    with seeded(seed):
        transformer = diffusers.QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=4 * z_dim,  # 2x2-packed latents
            out_channels=z_dim,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            axes_dims_rope=(4, 6, 6),
        ).eval()
    # Qwen-Image's scheduler: exponential dynamic shift with a terminal sigma.
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
        max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential",
    )
    return diffusers.QwenImagePipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )
