"""Export the trained moving-shapes video model to a diffusers pipeline folder (``WanPipeline.save_pretrained``).

    python training/export_moving.py                      # -> spectrum_core/models/embedded/moving/
    python training/export_moving.py --out /tmp/moving --no-ema

Takes the VAE from ``checkpoints/video/vae.pt`` (with its per-channel latent statistics written into
the VAE config as ``latents_mean``/``latents_std``, where WanPipeline reads them) and the transformer's
EMA weights from ``checkpoints/video/flow.pt``; the tokenizer and the random, frozen UMT5 encoder are
rebuilt from their fixed seed. Writes ``spectrum_moving.json`` beside ``model_index.json``: the call
arguments the model needs, the vocabulary and the training steps.
"""

from __future__ import annotations

import os
import sys

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moving_components as C  # noqa: E402
from common import export_main, save_pipeline  # noqa: E402
import train_moving as T  # noqa: E402
from moving_components import moving_shapes as M  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "spectrum_core", "models", "embedded", "moving")


def export(ckpt_dir: str, out: str, use_ema: bool = True) -> str:
    vae = T.load_vae(ckpt_dir)
    vae_ck = torch.load(os.path.join(ckpt_dir, "vae.pt"), weights_only=False)
    ck = torch.load(os.path.join(ckpt_dir, "flow.pt"), weights_only=False)
    transformer = C.build_transformer()
    transformer.load_state_dict(ck["ema" if use_ema else "model"])
    pipe = C.build_pipeline(vae, transformer.eval())
    meta = {
        "call_defaults": M.PIPELINE_CALL_DEFAULTS,
        "grammar": M.GRAMMAR,
        "colours": list(M.COLOURS),
        "shapes": list(M.SHAPES),
        "directions": list(M.DIRECTIONS),
        "backgrounds": list(M.BACKGROUNDS),
        "fps": 8,
        "vae_step": vae_ck["step"],
        "vae_dec_step": vae_ck.get("dec_step", 0),
        "flow_step": ck["step"],
        "weights": "ema" if use_ema else "model",
    }
    return save_pipeline(pipe, out, "spectrum_moving.json", meta)


def main(argv=None) -> None:
    export_main(__doc__, export, T.DEFAULT_CKPT, DEFAULT_OUT, argv)


if __name__ == "__main__":
    main()
