"""Tiny FLUX.1-dev: CLIP + T5 text encoders, guidance-embedded FluxTransformer2DModel; and FLUX.1 Fill, the same
text encoders and VAE with a transformer that also takes the masked image and the mask as input channels."""

from __future__ import annotations

from typing import Any

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, image_vae, seeded, t5_encoder, t5_tokenizer


def _flux_parts(seed: int) -> dict[str, Any]:
    """FLUX.1's tokenizers, text encoders and VAE (the same weights for every FLUX.1 pipeline of one seed)."""
    from transformers import CLIPTextModel

    tokenizer, tokenizer_2 = clip_tokenizer(), t5_tokenizer()
    with seeded(seed + 1):
        text_encoder = CLIPTextModel(clip_text_config(tokenizer)).eval()
    text_encoder_2 = t5_encoder(tokenizer_2, d_model=32, seed=seed + 2)
    vae = image_vae(latent_channels=4, scaling_factor=0.3611, shift_factor=0.1159, seed=seed + 3)
    return dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                tokenizer_2=tokenizer_2)


def build_flux(seed: int) -> diffusers.DiffusionPipeline:
    return assemble("flux", diffusers.FluxPipeline, seed, **_flux_parts(seed))


def build_flux_fill(seed: int) -> diffusers.DiffusionPipeline:
    """FluxFillPipeline: the pipeline concatenates, along the channels of each packed 2x2 token, the noisy
    latents (4 latent channels x 4), the masked image's latents (the same 16) and the 8x8 pixel mask of the
    token's 16x16 pixels (64 x 4 = 256), so the transformer takes 16 + 16 + 256 = 288 channels (the real
    FLUX.1-Fill-dev's 16-channel latents: 64 + 64 + 256 = 384) and predicts the 16 latent ones."""
    return assemble("flux-fill", diffusers.FluxFillPipeline, seed, **_flux_parts(seed))
