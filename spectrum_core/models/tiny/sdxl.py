"""Tiny SDXL: two CLIP text encoders (one with projection), the 8x VAE, a two-level UNet2DConditionModel
with SDXL's text-time conditioning, Euler; CFG as one batch of two."""

from __future__ import annotations

import diffusers

from ._common import clip_text_config, clip_tokenizer, image_vae, seeded

_TIME_IDS_WIDTH = 8  # SDXL adds six time ids (size, crop, target size), each embedded at this width


def build_sdxl(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer, tokenizer_2 = clip_tokenizer(), clip_tokenizer()
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(clip_text_config(tokenizer)).eval()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModelWithProjection(clip_text_config(tokenizer_2)).eval()
    vae = image_vae(latent_channels=4, scaling_factor=0.13025, shift_factor=None, seed=seed + 3)
    with seeded(seed):
        unet = diffusers.UNet2DConditionModel(
            sample_size=8,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            block_out_channels=(16, 32),
            layers_per_block=1,
            transformer_layers_per_block=1,
            attention_head_dim=(2, 4),
            norm_num_groups=8,
            cross_attention_dim=64,  # both encoders' hidden states, concatenated (32 + 32)
            use_linear_projection=True,
            addition_embed_type="text_time",
            addition_time_embed_dim=_TIME_IDS_WIDTH,
            projection_class_embeddings_input_dim=6 * _TIME_IDS_WIDTH + 32,  # time ids + pooled projection
        ).eval()
    scheduler = diffusers.EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    return diffusers.StableDiffusionXLPipeline(
        vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
        tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
    )
