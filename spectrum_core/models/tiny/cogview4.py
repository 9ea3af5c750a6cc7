"""Tiny CogView4: GLM text model, 16-channel 8x image VAE, CogView4Transformer2DModel with real CFG as two
calls per step (cache contexts ``"cond"`` / ``"uncond"``).

The real tokenizer is GLM-4's, saved as a plain ``PreTrainedTokenizerFast`` (byte-level BPE); the tiny one is
the same class over the shared byte-level BPE vocabulary, with GLM-4's ``[gMASK]<sop>`` prefix. The pipeline left-pads the prompt's tokens with
``pad_token_id`` to a multiple of 16 and reads the text model's ``hidden_states[-2]``.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae, qwen_tokenizer, seeded

_TEXT_WIDTH = 32
# GLM-4's tokenizer starts every text with these two tokens (so an empty negative prompt is two tokens, not none).
_PREFIX = ("[gMASK]", "<sop>")


def build_cogview4(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import GlmConfig, GlmModel, PreTrainedTokenizerFast

    from tokenizers import processors

    backend = qwen_tokenizer().backend_tokenizer
    backend.add_special_tokens(list(_PREFIX))
    backend.post_processor = processors.TemplateProcessing(
        single=" ".join((*_PREFIX, "$A")), special_tokens=[(t, backend.token_to_id(t)) for t in _PREFIX])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<|endoftext|>", eos_token="<|endoftext|>",
                                        additional_special_tokens=list(_PREFIX), model_max_length=1024)
    config = GlmConfig(
        vocab_size=len(tokenizer), hidden_size=_TEXT_WIDTH, intermediate_size=2 * _TEXT_WIDTH, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
    )
    with seeded(seed + 1):
        text_encoder = GlmModel(config).eval()
    vae = image_vae(latent_channels=16, scaling_factor=1.0, shift_factor=0.0, seed=seed + 2)
    return assemble("cogview4", diffusers.CogView4Pipeline, seed, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
