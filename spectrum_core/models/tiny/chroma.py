"""Tiny Chroma: T5 text encoder, FLUX.1's 8x VAE, ChromaTransformer2DModel (real CFG, two calls per step)."""

from __future__ import annotations

import diffusers

from ._common import image_vae, seeded, t5_encoder, t5_tokenizer


def build_chroma(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer()
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 2)
    with seeded(seed):
        transformer = diffusers.ChromaTransformer2DModel(
            patch_size=1,
            in_channels=4 * 4,  # 2x2-packed latents
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=32,
            axes_dims_rope=(4, 6, 6),
            approximator_num_channels=16,
            approximator_hidden_dim=32,
            approximator_layers=1,
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    return diffusers.ChromaPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer
    )
