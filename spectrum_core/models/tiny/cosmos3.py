"""Tiny Cosmos 3 (omni): the transformer is itself the vision-language text model (token embeddings, decoder
layers over a prompt stream and a generation stream, an LM head), so the pipeline has no text encoder, only
its tokenizer (``text_tokenizer``: a Qwen2 one with the chat template and the ``<|vision_start|>`` marker the
pipeline appends); Wan2.2's 16x VAE layout (2x2-patchified, residual) at z_dim 8; UniPC in flow mode. The
safety checker is off (``enable_safety_checker=False``: it needs the separate ``cosmos_guardrail`` package
and its gated weights). The pipeline makes one sample per call, CFG as two calls per step in
cache_context("cond") / ("uncond").
"""

from __future__ import annotations

import diffusers

from ._common import assemble, qwen_tokenizer, seeded

# The marker the pipeline appends after the prompt (with the end-of-turn token) to start generation.
_VISION_START = "<|vision_start|>"


def _tokenizer():
    from diffusers.pipelines.cosmos.pipeline_cosmos3_omni import _SYSTEM_PROMPT_IMAGE, _SYSTEM_PROMPT_VIDEO

    tokenizer = qwen_tokenizer(f"{_SYSTEM_PROMPT_VIDEO}\n{_SYSTEM_PROMPT_IMAGE}")
    tokenizer.add_tokens([_VISION_START], special_tokens=True)
    return tokenizer


def build_cosmos3(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = _tokenizer()
    z_dim = 8  # the VAE's (components.json)
    with seeded(seed):
        transformer = diffusers.Cosmos3OmniTransformer(
            vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, head_dim=16, num_attention_heads=2,
            num_key_value_heads=1, num_hidden_layers=2, latent_channel=z_dim, latent_patch_size=2,
            patch_latent_dim=4 * z_dim,  # 2x2 patches of z_dim channels
            rope_axes_dim=[4, 2, 2],  # mRoPE sections (time, height, width): half the head width
            dtype="float32",
        ).eval()
    return assemble("cosmos3", diffusers.Cosmos3OmniPipeline, seed, transformer=transformer,
                    text_tokenizer=tokenizer, enable_safety_checker=False)
