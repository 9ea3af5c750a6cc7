"""Tiny LTX-2: Gemma-3 text encoder (toy SigLIP vision tower), LTX-2 text connectors, 16x/4x video VAE, audio
VAE and vocoder, LTX2VideoTransformer3DModel with its video and audio streams.

The pipeline runs up to three transformer calls per step, each in its own cache context: CFG as a batch of
two in ``"cond_uncond"``, spatio-temporal guidance in ``"uncond_stg"`` and modality-isolation guidance in
``"uncond_modality"`` (both on by default). Its default STG block (28) is past this model's two blocks, so the
tiny STG call runs unperturbed unless a call names a block that exists (``spatio_temporal_guidance_blocks=[1]``).
"""

from __future__ import annotations

import diffusers

from ._common import assemble, gemma_tokenizer, seeded

_TEXT_WIDTH, _TEXT_LAYERS = 32, 2


def _text_encoder(tokenizer, seed: int):
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    size = len(tokenizer)
    text = dict(
        vocab_size=size, hidden_size=_TEXT_WIDTH, intermediate_size=2 * _TEXT_WIDTH, num_hidden_layers=_TEXT_LAYERS,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024, sliding_window=64,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=28,
                  patch_size=14)
    # The image markers are the last three byte-fallback ids: never produced by an English prompt.
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4, boi_token_index=size - 3,
                          eoi_token_index=size - 2, image_token_index=size - 1)
    with seeded(seed):
        return Gemma3ForConditionalGeneration(config).eval()


def build_ltx2(seed: int) -> diffusers.DiffusionPipeline:
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tokenizer = gemma_tokenizer()
    text_encoder = _text_encoder(tokenizer, seed + 1)
    with seeded(seed + 4):  # the text encoder's stacked hidden states, projected to each stream's captions
        connectors = LTX2TextConnectors(
            caption_channels=_TEXT_WIDTH, text_proj_in_factor=_TEXT_LAYERS + 1,
            video_connector_num_attention_heads=4, video_connector_attention_head_dim=8, video_connector_num_layers=1,
            video_connector_num_learnable_registers=None, audio_connector_num_attention_heads=4,
            audio_connector_attention_head_dim=8, audio_connector_num_layers=1,
            audio_connector_num_learnable_registers=None, connector_rope_base_seq_len=64,
        ).eval()
    with seeded(seed + 5):  # mel bins (8) x the audio VAE's output channels (2) in
        vocoder = LTX2Vocoder(
            in_channels=16, hidden_channels=16, out_channels=2, upsample_kernel_sizes=[4, 4], upsample_factors=[2, 2],
            resnet_kernel_sizes=[3], resnet_dilations=[[1, 3, 5]], output_sampling_rate=16000,
        ).eval()
    return assemble("ltx2", diffusers.LTX2Pipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
                    connectors=connectors, vocoder=vocoder)
