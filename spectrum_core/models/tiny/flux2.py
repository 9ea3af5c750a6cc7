"""Tiny FLUX.2 Klein (base): Qwen3 text encoder, FLUX.2 VAE, Flux2Transformer2DModel with real CFG.

FLUX.2 dev shares the transformer class but encodes prompts with Mistral-3 (a vision-language model with
its own processor); the Klein pipeline exercises the same transformer, blocks and head.
"""

from __future__ import annotations

import diffusers

from ._common import qwen3_encoder, qwen_tokenizer, seeded

_TEXT_WIDTH = 16
# The pipeline stacks the text encoder's hidden states 9, 18 and 27 (Qwen3-4B has 36 layers).
_TEXT_LAYERS = 28


def build_flux2_klein(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = qwen_tokenizer("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    text_encoder = qwen3_encoder(tokenizer, hidden_size=_TEXT_WIDTH, num_layers=_TEXT_LAYERS, seed=seed + 1)
    with seeded(seed + 2):
        vae = diffusers.AutoencoderKLFlux2(
            block_out_channels=(8, 8, 16, 16),
            layers_per_block=1,
            latent_channels=4,
            norm_num_groups=4,
            sample_size=64,
            mid_block_add_attention=False,
        ).eval()
    with seeded(seed):
        transformer = diffusers.Flux2Transformer2DModel(
            patch_size=1,
            in_channels=4 * 4,  # 2x2-patchified latents
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=16,
            num_attention_heads=2,
            joint_attention_dim=3 * _TEXT_WIDTH,  # three stacked hidden states
            timestep_guidance_channels=32,
            axes_dims_rope=(4, 4, 4, 4),
            guidance_embeds=False,
        ).eval()
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(
        shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096,
    )
    return diffusers.Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        is_distilled=False,
    )
