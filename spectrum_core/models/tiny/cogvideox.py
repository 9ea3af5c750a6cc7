"""Tiny CogVideoX (5B layout): T5 text encoder, CogVideoX VAE, rotary CogVideoXTransformer3DModel, DPM."""

from __future__ import annotations

import diffusers

from ._common import seeded, t5_encoder, t5_tokenizer


def build_cogvideox(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = t5_tokenizer(226)
    text_encoder = t5_encoder(tokenizer, d_model=32, seed=seed + 1)
    with seeded(seed + 2):
        vae = diffusers.AutoencoderKLCogVideoX(
            in_channels=3,
            out_channels=3,
            down_block_types=("CogVideoXDownBlock3D",) * 4,
            up_block_types=("CogVideoXUpBlock3D",) * 4,
            block_out_channels=(8, 8, 8, 8),
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=2,
            temporal_compression_ratio=4,
            sample_height=64,
            sample_width=64,
            scaling_factor=0.7,
        ).eval()
    with seeded(seed):
        transformer = diffusers.CogVideoXTransformer3DModel(
            num_attention_heads=2,
            attention_head_dim=16,
            in_channels=4,
            out_channels=4,
            time_embed_dim=16,
            text_embed_dim=32,
            num_layers=2,
            sample_width=8,  # latent units: 64 px / 8
            sample_height=8,
            sample_frames=9,
            patch_size=2,
            temporal_compression_ratio=4,
            max_text_seq_length=226,
            use_rotary_positional_embeddings=True,  # as CogVideoX-5B
        ).eval()
    # CogVideoX-5B's scheduler: v-prediction DPM with zero-terminal-SNR betas, trailing spacing.
    scheduler = diffusers.CogVideoXDPMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False,
        prediction_type="v_prediction", rescale_betas_zero_snr=True, set_alpha_to_one=True,
        snr_shift_scale=1.0, timestep_spacing="trailing",
    )
    return diffusers.CogVideoXPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
