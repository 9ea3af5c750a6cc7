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


def _transformer(seed: int, z_dim: int):
    with seeded(seed):
        return diffusers.QwenImageTransformer2DModel(
            patch_size=2,
            in_channels=4 * z_dim,  # 2x2-packed latents
            out_channels=z_dim,
            num_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            axes_dims_rope=(4, 6, 6),
        ).eval()


def _scheduler():
    # Qwen-Image's scheduler: exponential dynamic shift with a terminal sigma.
    return diffusers.FlowMatchEulerDiscreteScheduler(
        shift=1.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=0.9, base_image_seq_len=256,
        max_image_seq_len=8192, shift_terminal=0.02, time_shift_type="exponential",
    )


def build_qwenimage(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = qwen_tokenizer(_TEMPLATE)
    text_encoder = _text_encoder(tokenizer, seed + 1)
    z_dim = 4
    with seeded(seed + 2):
        vae = diffusers.AutoencoderKLQwenImage(
            base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
            latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
        ).eval()
    return diffusers.QwenImagePipeline(
        scheduler=_scheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=_transformer(seed, z_dim)
    )


# The edit pipelines' components that can be built without torchvision (see build_qwenimage_edit_denoiser).
EDIT_MISSING = ("text_encoder", "tokenizer", "processor")


def build_qwenimage_edit_denoiser(seed: int, pipeline: str) -> diffusers.DiffusionPipeline:
    """``QwenImageEditPipeline`` or ``QwenImageEditPlusPipeline`` (``pipeline``) over the tiny Qwen-Image
    transformer (the same weights as ``build_qwenimage``'s) and scheduler, with the components in
    :data:`EDIT_MISSING` left out: the pipeline runs only on prompt embeddings passed to it.

    Why not whole: its prompt encoder needs a ``Qwen2VLProcessor`` (the vision-language processor that puts
    the input image's tokens in the prompt), and transformers 5.25 cannot construct one without torchvision,
    not even from a saved folder (its check of the ``video_processor`` slot fails), while no torchvision build
    for the CPU torch is installable here. So there is no tiny-qwenimage-edit preset; the denoising loop, which
    is what Spectrum hooks, is the pipeline's own.

    Both pipelines resize the input image to about 1 MP (hard-coded) and encode it with the VAE, so this VAE
    is not the base model's: no residual blocks, 4 channels, 16x spatial compression (about 1 s per 1024² encode
    on one thread, against about 4 s for the base one), and 1024 image tokens ride along the latents' tokens.
    """
    z_dim = 4
    with seeded(seed + 2):
        vae = diffusers.AutoencoderKLQwenImage(
            base_dim=4, z_dim=z_dim, dim_mult=[1] * 5, num_res_blocks=0, temperal_downsample=[False, False, True, True],
            latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
        ).eval()
    return getattr(diffusers, pipeline)(scheduler=_scheduler(), vae=vae, transformer=_transformer(seed, z_dim),
                                        **dict.fromkeys(EDIT_MISSING))
