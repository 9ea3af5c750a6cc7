"""Tiny FLUX.2: Klein (base; Qwen3 text encoder, real CFG) and dev (Mistral-3 text encoder, embedded
guidance), both over the FLUX.2 VAE and Flux2Transformer2DModel.

FLUX.2 dev's checkpoint pairs Mistral-3 with a PixtralProcessor, which needs torchvision (not a dependency
here); its pipeline only asks that component for ``apply_chat_template`` over text-only conversations, so
the tiny dev model carries a plain tokenizer with Mistral's chat markers and a chat template of the same
shape (``[SYSTEM_PROMPT]...[/SYSTEM_PROMPT][INST]...[/INST]``). Prompts with images are not covered.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, llama_tokenizer, qwen3_encoder, qwen_tokenizer, seeded

_TEXT_WIDTH = 16
# The pipeline stacks the text encoder's hidden states 9, 18 and 27 (Qwen3-4B has 36 layers).
_TEXT_LAYERS = 28


def build_flux2_klein(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = qwen_tokenizer("<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n")
    text_encoder = qwen3_encoder(tokenizer, hidden_size=_TEXT_WIDTH, num_layers=_TEXT_LAYERS, seed=seed + 1)
    return assemble(
        "flux2", diffusers.Flux2KleinPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        is_distilled=False
    )


# Mistral's chat markers and the image tokens the Mistral-3 config names.
_MISTRAL_SPECIAL = ("[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]")
# Text-only Mistral-3 chat template: each message's text parts, system then user turns.
_MISTRAL_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% set text = message['content'] if message['content'] is string "
    "else message['content'] | selectattr('type', 'equalto', 'text') | map(attribute='text') | join('') %}"
    "{% if message['role'] == 'system' %}[SYSTEM_PROMPT]{{ text }}[/SYSTEM_PROMPT]"
    "{% elif message['role'] == 'user' %}[INST]{{ text }}[/INST]{% else %}{{ text }}{{ eos_token }}{% endif %}{% endfor %}"
)
# The pipeline stacks the text encoder's hidden states 10, 20 and 30 (Mistral-Small-3 has 40 layers).
_MISTRAL_LAYERS = 30


def _mistral3_encoder(tokenizer, seed: int):
    """A Mistral-3 vision-language model at toy width (a one-layer Pixtral tower it never uses for text)."""
    from transformers import Mistral3Config, Mistral3ForConditionalGeneration

    text = dict(
        model_type="mistral", vocab_size=len(tokenizer), hidden_size=_TEXT_WIDTH, intermediate_size=2 * _TEXT_WIDTH,
        num_hidden_layers=_MISTRAL_LAYERS, num_attention_heads=2, num_key_value_heads=1, head_dim=8,
        max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    vision = dict(model_type="pixtral", hidden_size=16, intermediate_size=16, num_hidden_layers=1,
                  num_attention_heads=2, head_dim=8, patch_size=16, image_size=64)
    config = Mistral3Config(text_config=text, vision_config=vision, spatial_merge_size=1,
                            image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"))
    with seeded(seed):
        return Mistral3ForConditionalGeneration(config).eval()


def build_flux2_dev(seed: int) -> diffusers.DiffusionPipeline:
    tokenizer = llama_tokenizer()
    tokenizer.add_special_tokens({"additional_special_tokens": list(_MISTRAL_SPECIAL)})
    tokenizer.chat_template = _MISTRAL_CHAT_TEMPLATE
    text_encoder = _mistral3_encoder(tokenizer, seed + 1)
    return assemble("flux2-dev", diffusers.Flux2Pipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer)
