"""Export the trained shapes model to a diffusers pipeline folder (``FluxPipeline.save_pretrained``).

    python training/export_shapes.py                      # -> spectrum_core/embedded/shapes/
    python training/export_shapes.py --out /tmp/shapes --no-ema

Takes the VAE from ``checkpoints/ae.pt`` (with its latent scaling/shift written into the VAE config)
and the transformer's EMA weights from ``checkpoints/flow.pt``; the tokenizers and the random, frozen
text encoders are rebuilt from their fixed seed. Writes ``spectrum_shapes.json`` beside
``model_index.json``: the call arguments the model needs, the vocabulary and the training step.
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
import shapes_components as C  # noqa: E402
import train_shapes as T  # noqa: E402
from shapes_components import shapes  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "spectrum_core", "embedded", "shapes")


def export(ckpt_dir: str, out: str, use_ema: bool = True) -> str:
    vae = T.load_vae(ckpt_dir)
    ck = torch.load(os.path.join(ckpt_dir, "flow.pt"), weights_only=False)
    transformer = C.build_transformer()
    transformer.load_state_dict(ck["ema" if use_ema else "model"])
    pipe = C.build_pipeline(vae, transformer.eval())
    if os.path.exists(out):
        shutil.rmtree(out)
    pipe.save_pretrained(out, safe_serialization=True)
    meta = {
        "call_defaults": shapes.PIPELINE_CALL_DEFAULTS,
        "grammar": shapes.GRAMMAR,
        "colours": list(shapes.COLOURS),
        "shapes": list(shapes.SHAPES),
        "backgrounds": list(shapes.BACKGROUNDS),
        "flow_step": ck["step"],
        "weights": "ema" if use_ema else "model",
    }
    with open(os.path.join(out, "spectrum_shapes.json"), "w") as f:
        json.dump(meta, f, indent=2)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt-dir", default=os.path.join(HERE, "checkpoints"))
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    a = p.parse_args(argv)
    out = export(a.ckpt_dir, os.path.abspath(a.out), use_ema=not a.no_ema)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"exported to {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
