"""Tiny HunyuanVideo-1.5: Qwen2.5-VL text model + ByT5 glyph encoder, 16x video VAE, real CFG by the guider.

The pipeline pads the prompt to 1000 tokens after cropping its system-message template (a hard-coded
``crop_start`` of 108, Qwen2.5's count) and adds 729 image-embedding slots and 256 ByT5 slots to the text
stream, and the ByT5 projection is 2048 wide whatever the config: those are fixed by the pipeline and the
transformer, so the tiny transformer is narrow (one head of width 8) and a call still attends over about
2,000 text tokens (a 24-step call takes about 2.3 s on one CPU thread, twice the other tiny video models). The Qwen2 tokenizer is trained on the template, which then splits into
exactly the 108 tokens the pipeline drops.
"""

from __future__ import annotations

import inspect

import diffusers

from ._common import assemble, hunyuan_text_encoders


def system_template() -> str:
    """The chat-template prefix the pipeline renders before the prompt (its system message, then the user turn)."""
    signature = inspect.signature(diffusers.HunyuanVideo15Pipeline._get_mllm_prompt_embeds)
    message = signature.parameters["system_message"].default
    return f"<|im_start|>system\n{message}<|im_end|>\n<|im_start|>user\n"


def build_hunyuan15(seed: int) -> diffusers.DiffusionPipeline:
    return assemble("hunyuan15", diffusers.HunyuanVideo15Pipeline, seed, **hunyuan_text_encoders(system_template(), seed))
