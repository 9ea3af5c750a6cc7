"""Tiny Kandinsky 5.0 T2V: Qwen2.5-VL text model + CLIP (pooled), HunyuanVideo VAE, Kandinsky5Transformer3DModel.

The checkpoint's tokenizer is a Qwen2VLProcessor, whose video processor needs torchvision (not a
dependency); the pipeline only ever calls it with text (``images=None, videos=None``), which a plain
Qwen2 tokenizer takes as well, so the tiny model carries that (trained on the pipeline's prompt template).
The pipeline drops a hard-coded 128 template tokens (the real tokenizer's count); the tiny tokenizer splits
the template's prefix into exactly 128 too. Text is not padded (the pipeline pads to the longest prompt
only), so calls are cheap. The transformer's text blocks refine the prompt embeddings, its visual blocks
cross-attend to them; CFG is two calls per step that open no cache context (cond, then uncond).
"""

from __future__ import annotations

import diffusers

from ._common import assemble, clip_text_config, clip_tokenizer, qwen_tokenizer, seeded


# Trained one token per word, the template's prefix is 125 tokens; the tiny tokenizer learns these three rarer
# words (the typo "scren" among them) as two pieces each instead, which makes it the pipeline's 128. (The
# pieces are a choice that gives the count; the real tokenizer's split of these words was not checked.)
_TWO_PIECES = {"scren": ("scr", "en"), "postprocessing": ("post", "processing"), "dynamism": ("dynam", "ism")}


def prompt_template() -> str:
    """The pipeline's prompt template (set in its __init__, which needs none of its components)."""
    names = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler")
    return diffusers.Kandinsky5T2VPipeline(**dict.fromkeys(names)).prompt_template


def system_template() -> str:
    """The part of the prompt template before the prompt: what the pipeline drops after encoding."""
    return prompt_template().split("{}")[0]


def _tokenizer():
    corpus = prompt_template()
    for word, (first, second) in _TWO_PIECES.items():
        corpus = corpus.replace(word, first) + "\n" + second
    return qwen_tokenizer(corpus)


def build_kandinsky5(seed: int) -> diffusers.DiffusionPipeline:
    from transformers import CLIPTextModel, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel

    tokenizer = _tokenizer()
    text_config = Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
        rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    with seeded(seed + 1):
        text_encoder = Qwen2_5_VLTextModel(text_config).eval()
    tokenizer_2 = clip_tokenizer()
    with seeded(seed + 2):
        text_encoder_2 = CLIPTextModel(clip_text_config(tokenizer_2)).eval()
    return assemble(
        "kandinsky5", diffusers.Kandinsky5T2VPipeline, seed, text_encoder=text_encoder, tokenizer=tokenizer,
        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
    )
