"""Export the trained moving-shapes video model to a diffusers pipeline folder (``WanPipeline.save_pretrained``).

    python training/export_moving.py                      # -> spectrum_core/embedded/moving/
    python training/export_moving.py --out /tmp/moving --no-ema

Takes the VAE from ``checkpoints/video/vae.pt`` (with its per-channel latent statistics written into
the VAE config as ``latents_mean``/``latents_std``, where WanPipeline reads them) and the transformer's
EMA weights from ``checkpoints/video/flow.pt``; the tokenizer and the random, frozen UMT5 encoder are
rebuilt from their fixed seed. Writes ``spectrum_moving.json`` beside ``model_index.json``: the call
arguments the model needs, the vocabulary and the training steps.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moving_components as C  # noqa: E402
import train_moving as T  # noqa: E402
from moving_components import moving_shapes as M  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "spectrum_core", "embedded", "moving")


def export(ckpt_dir: str, out: str, use_ema: bool = True) -> str:
    vae = T.load_vae(ckpt_dir)
    vae_ck = torch.load(os.path.join(ckpt_dir, "vae.pt"), weights_only=False)
    ck = torch.load(os.path.join(ckpt_dir, "flow.pt"), weights_only=False)
    transformer = C.build_transformer()
    transformer.load_state_dict(ck["ema" if use_ema else "model"])
    pipe = C.build_pipeline(vae, transformer.eval())
    if os.path.exists(out):
        shutil.rmtree(out)
    pipe.save_pretrained(out, safe_serialization=True)
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
    with open(os.path.join(out, "spectrum_moving.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt-dir", default=T.DEFAULT_CKPT)
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    a = p.parse_args(argv)
    out = export(a.ckpt_dir, os.path.abspath(a.out), use_ema=not a.no_ema)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"exported to {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
