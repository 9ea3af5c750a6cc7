"""Tiny Wan2.1 / Wan2.2: UMT5 text encoder, Wan VAE, one or two WanTransformer3DModel experts."""

from __future__ import annotations

import diffusers

from ._common import seeded, t5_tokenizer, umt5_encoder


def _wan_transformer(seed: int):
    with seeded(seed):
        return diffusers.WanTransformer3DModel(
            patch_size=(1, 2, 2),
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=16,
            out_channels=16,
            text_dim=32,
            freq_dim=64,
            ffn_dim=64,
            num_layers=2,
            cross_attn_norm=True,
            qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64,
        ).eval()


def _wan_pipeline(seed: int, transformer_2_seed: int | None) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer()
    text_encoder = umt5_encoder(tokenizer, d_model=32, seed=seed + 1)
    with seeded(seed + 3):
        vae = diffusers.AutoencoderKLWan(
            base_dim=8,
            z_dim=16,
            dim_mult=[1, 1, 1, 1],
            num_res_blocks=1,
            temperal_downsample=[False, True, True],
        ).eval()
    # Wan presets: UniPC in flow-matching mode with a fixed shift.
    scheduler = diffusers.UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )
    two_experts = transformer_2_seed is not None
    return diffusers.WanPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        vae=vae,
        scheduler=scheduler,
        transformer=_wan_transformer(seed),
        transformer_2=_wan_transformer(transformer_2_seed) if two_experts else None,
        boundary_ratio=0.875 if two_experts else None,  # Wan2.2-A14B's switch point
    )


def build_wan(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=None)


def build_wan22(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=seed + 1000)




def build_wan22_5b(seed: int) -> diffusers.DiffusionPipeline:
    """Wan2.2-TI2V-5B's layout: one transformer over the residual, 2x2-patchified VAE with 16x spatial
    compression, per-token timesteps (``expand_timesteps``)."""
    z_dim = 8
    tokenizer = t5_tokenizer()
    text_encoder = umt5_encoder(tokenizer, d_model=32, seed=seed + 1)
    with seeded(seed + 3):
        vae = diffusers.AutoencoderKLWan(
            base_dim=8, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True],
            is_residual=True, in_channels=12, out_channels=12, patch_size=2, scale_factor_spatial=16,
            latents_mean=[0.0] * z_dim, latents_std=[1.0] * z_dim,
        ).eval()
    with seeded(seed):
        transformer = diffusers.WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=z_dim,
            out_channels=z_dim, text_dim=32, freq_dim=64, ffn_dim=64, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=64,
        ).eval()
    scheduler = diffusers.UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=5.0
    )
    return diffusers.WanPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer,
        expand_timesteps=True,
    )
