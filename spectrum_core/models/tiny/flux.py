"""Tiny FLUX.1-dev: CLIP + T5 text encoders, guidance-embedded FluxTransformer2DModel."""

from __future__ import annotations

import diffusers

from ._common import clip_text_config, clip_tokenizer, image_vae, seeded, t5_encoder, t5_tokenizer


def build_flux(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(clip_text_config(tokenizer)).eval()
    text_encoder_2 = t5_encoder(tokenizer_2, d_model=32, seed=seed + 2)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 3)
    with seeded(seed):
        transformer = diffusers.FluxTransformer2DModel(
            patch_size=1,
            in_channels=4 * 4,  # 2x2-packed latents
            num_layers=2,
            num_single_layers=2,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            pooled_projection_dim=32,
            guidance_embeds=True,
            axes_dims_rope=(4, 6, 6),
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return diffusers.FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )

