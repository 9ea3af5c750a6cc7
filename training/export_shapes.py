"""Export the trained shapes model to a diffusers pipeline folder (``FluxPipeline.save_pretrained``).

    python training/export_shapes.py                      # -> spectrum_core/models/embedded/shapes/
    python training/export_shapes.py --out /tmp/shapes --no-ema

Takes the VAE from ``checkpoints/ae.pt`` (with its latent scaling/shift written into the VAE config)
and the transformer's EMA weights from ``checkpoints/flow.pt``; the tokenizers and the random, frozen
text encoders are rebuilt from their fixed seed. Writes ``spectrum_shapes.json`` beside
``model_index.json``: the call arguments the model needs, the vocabulary and the training step.
"""

from __future__ import annotations

import os
import sys

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_components as C  # noqa: E402
from common import export_main, save_pipeline  # noqa: E402
import train_shapes as T  # noqa: E402
from shapes_components import shapes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "spectrum_core", "models", "embedded", "shapes")


def export(ckpt_dir: str, out: str, use_ema: bool = True) -> str:
    vae = T.load_vae(ckpt_dir)
    ck = torch.load(os.path.join(ckpt_dir, "flow.pt"), weights_only=False)
    transformer = C.build_transformer()
    transformer.load_state_dict(ck["ema" if use_ema else "model"])
    pipe = C.build_pipeline(vae, transformer.eval())
    meta = {
        "call_defaults": shapes.PIPELINE_CALL_DEFAULTS,
        "grammar": shapes.GRAMMAR,
        "colours": list(shapes.COLOURS),
        "shapes": list(shapes.SHAPES),
        "backgrounds": list(shapes.BACKGROUNDS),
        "flow_step": ck["step"],
        "weights": "ema" if use_ema else "model",
    }
    return save_pipeline(pipe, out, "spectrum_shapes.json", meta)


def main(argv=None) -> None:
    export_main(__doc__, export, os.path.join(HERE, "checkpoints"), DEFAULT_OUT, argv)


if __name__ == "__main__":
    main()
