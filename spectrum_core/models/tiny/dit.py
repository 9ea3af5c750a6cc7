"""Tiny DiT: class-conditional on ImageNet-style labels (no text encoder), SD's 4-channel 8x image VAE,
DiTTransformer2DModel (BasicTransformerBlock blocks with adaLN-zero, learned sigma: 8 output channels; 1000
classes plus the null class the pipeline's CFG uses) with CFG as one batch of two and no cache context, and
DDIM with DiT's linear betas.

The pipeline keeps its labels (``id2label``) as an init argument that ``save_pretrained`` does not write; the
builder registers them to the pipeline's config, so model_index.json holds them as the real checkpoint's does.
The tiny labels are a few ImageNet classes in the checkpoint's form (comma-separated names of one class) and
the prompts the test suite and the README's tiny example use.
"""

from __future__ import annotations

import diffusers

from ._common import assemble, image_vae

ID2LABEL = {
    "0": "tench, Tinca tinca",
    "1": "goldfish, Carassius auratus",
    "2": "great white shark, white shark, man-eater, man-eating shark, Carcharodon carcharias",
    "207": "golden retriever",
    "281": "tabby, tabby cat",
    "879": "umbrella",
    "900": "a cat",
    "901": "a red circle on a navy background",
    "902": "a photo of an astronaut riding a zebra-striped horse",
}


def build_dit(seed: int) -> diffusers.DiffusionPipeline:
    vae = image_vae(latent_channels=4, scaling_factor=0.18215, shift_factor=None, seed=seed + 2)
    pipe = assemble("dit", diffusers.DiTPipeline, seed, vae=vae, id2label=ID2LABEL)
    pipe.register_to_config(id2label=ID2LABEL)
    return pipe
