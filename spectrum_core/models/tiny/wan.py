"""Tiny Wan2.1 / Wan2.2: UMT5 text encoder, Wan VAE, one or two WanTransformer3DModel experts."""

from __future__ import annotations

import diffusers

from ._common import seeded, t5_tokenizer, umt5_encoder


def _wan_transformer(seed: int, **changes):
    with seeded(seed):
        return diffusers.WanTransformer3DModel(**{**dict(
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
        ), **changes}).eval()


def _wan_parts(seed: int) -> dict:
    """Wan2.1/2.2's UMT5 text encoder, the 16-channel Wan VAE and the flow-matching UniPC of the presets."""
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
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler)


def _wan_pipeline(seed: int, transformer_2_seed: int | None) -> diffusers.DiffusionPipeline:
    parts = _wan_parts(seed)
    two_experts = transformer_2_seed is not None
    return diffusers.WanPipeline(
        **parts,
        transformer=_wan_transformer(seed),
        transformer_2=_wan_transformer(transformer_2_seed) if two_experts else None,
        boundary_ratio=0.875 if two_experts else None,  # Wan2.2-A14B's switch point
    )


def build_wan(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=None)


def build_wan22(seed: int) -> diffusers.DiffusionPipeline:
    return _wan_pipeline(seed, transformer_2_seed=seed + 1000)


# Image-to-video: the pipeline concatenates, along the channels, the noisy latents (16), a 4-channel mask of
# the frames given (the first; 4 = the VAE's temporal compression) and the latents of the conditioning video
# (the image, then zeros: 16), so the transformer takes 16 + 4 + 16 = 36 channels, as Wan2.1/2.2 I2V's do.
_I2V_CHANNELS = 36
_CLIP_WIDTH = 32  # the tiny CLIP vision tower's width (ViT-H/14's 1280 on Wan2.1 I2V)


def build_wan_i2v(seed: int) -> diffusers.DiffusionPipeline:
    """Wan2.1 I2V: a CLIP vision encoder whose penultimate hidden states enter every block's cross-attention
    beside the text (``image_dim``, ``added_kv_proj_dim``); one transformer, CFG in cond/uncond contexts."""
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    with seeded(seed + 4):
        image_encoder = CLIPVisionModel(CLIPVisionConfig(
            hidden_size=_CLIP_WIDTH, intermediate_size=2 * _CLIP_WIDTH, num_hidden_layers=2, num_attention_heads=2,
            image_size=32, patch_size=8, projection_dim=_CLIP_WIDTH, hidden_act="gelu",
        )).eval()
    # The PIL image processor (torchvision is not needed), at the vision tower's 32x32 input.
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    transformer = _wan_transformer(seed, in_channels=_I2V_CHANNELS, image_dim=_CLIP_WIDTH, added_kv_proj_dim=32)
    return diffusers.WanImageToVideoPipeline(**_wan_parts(seed), transformer=transformer, image_encoder=image_encoder,
                                             image_processor=image_processor)


def build_wan22_i2v(seed: int) -> diffusers.DiffusionPipeline:
    """Wan2.2 I2V A14B: two experts of 36 input channels and no image encoder, handing over at
    ``boundary_ratio`` 0.9 (the real checkpoint's)."""
    return diffusers.WanImageToVideoPipeline(
        **_wan_parts(seed), transformer=_wan_transformer(seed, in_channels=_I2V_CHANNELS),
        transformer_2=_wan_transformer(seed + 1000, in_channels=_I2V_CHANNELS), boundary_ratio=0.9,
    )




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


def build_wan_vace(seed: int) -> diffusers.DiffusionPipeline:
    """Wan2.1 VACE: WanVACETransformer3DModel, two Wan blocks each followed by a vace hint (vace layers 0 and
    1). The control video enters at 96 channels: the latents of its inactive (unmasked) and reactive (masked)
    parts, 16 + 16, and the 8x8 pixel mask of each latent pixel, 64; the wan text encoder, VAE and scheduler."""
    with seeded(seed):
        transformer = diffusers.WanVACETransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16, in_channels=16, out_channels=16,
            text_dim=32, freq_dim=64, ffn_dim=64, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
            rope_max_seq_len=64, vace_layers=[0, 1], vace_in_channels=96,
        ).eval()
    return diffusers.WanVACEPipeline(**_wan_parts(seed), transformer=transformer)
