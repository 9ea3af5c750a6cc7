"""What the training scripts of both embedded models share: logging, atomic checkpoints, sample grids,
the learning-rate schedule, the command-line options every stage has, and the atomic export of a
pipeline folder into the package."""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import time

import numpy as np
import torch


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def atomic_save(obj, path: str) -> None:
    """``torch.save`` to a temporary file, then rename: a killed run never leaves half a checkpoint."""
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_grid(images: np.ndarray, path: str, cols: int = 8, scale: int = 2) -> None:
    """uint8 images [n, H, W, 3] as one PNG, ``cols`` per row, 2 px white gaps, upscaled ``scale`` times."""
    from PIL import Image

    n, h, w, _ = images.shape
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + 2), cols * (w + 2), 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * (h + 2) : r * (h + 2) + h, c * (w + 2) : c * (w + 2) + w] = im
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(path)


def lr_at(step: int, base: float, warmup: int, total: int = 0, decay: int = 0) -> float:
    """Linear warm-up over ``warmup`` steps, constant, then (if ``decay``) linear down to 10 % over the
    last ``decay`` of ``total`` steps. A function of the step only, so a resumed run equals an
    uninterrupted one."""
    lr = base * min(1.0, (step + 1) / warmup)
    if decay and step > total - decay:
        lr *= 1.0 - 0.9 * min(1.0, (step - (total - decay)) / decay)
    return lr


def training_parser(doc: str, defaults: dict[str, tuple[int, int, float, int]], ckpt_dir: str,
                    n_latents: int) -> argparse.ArgumentParser:
    """The options of a training script. ``defaults`` maps each stage to its (steps, batch, lr, decay);
    :func:`parse_training_args` fills in the ones left unset. Script-specific options are added by the
    caller."""
    def per_stage(i: int) -> str:
        return ", ".join(f"{stage} {d[i]:g}" for stage, d in defaults.items())

    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stage", choices=list(defaults), required=True)
    p.add_argument("--steps", type=int, default=None, help=f"total steps of the stage ({per_stage(0)})")
    p.add_argument("--batch", type=int, default=None, help=f"samples per step ({per_stage(1)})")
    p.add_argument("--lr", type=float, default=None, help=per_stage(2))
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--decay", type=int, default=None,
                   help=f"linear learning-rate decay to 10%% over the last N steps ({per_stage(3)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kl", type=float, default=1e-4, help="autoencoder: weight of the KL term (per pixel)")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--n-latents", type=int, default=n_latents, help="flow: size of the pre-encoded training set")
    p.add_argument("--p-uncond", type=float, default=0.1, help="flow: probability of the empty prompt (CFG)")
    p.add_argument("--ckpt-dir", default=ckpt_dir)
    p.add_argument("--ckpt-every", type=float, default=300, help="seconds between checkpoints")
    p.add_argument("--sample-every", type=float, default=900, help="flow: seconds between sample grids (0: never)")
    p.add_argument("--max-minutes", type=float, default=0, help="stop (with a checkpoint) after this long")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.set_defaults(stage_defaults=defaults)
    return p


def parse_training_args(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, fill each unset per-stage option from the stage's defaults, set the thread count, create
    the checkpoint folder and log the arguments (the log is the run's record)."""
    a = p.parse_args(argv)
    steps, batch, lr, decay = a.stage_defaults[a.stage]
    del a.stage_defaults
    a.steps = a.steps or steps
    a.batch = a.batch or batch
    a.lr = a.lr or lr
    a.decay = decay if a.decay is None else a.decay
    torch.set_num_threads(a.threads)
    os.makedirs(a.ckpt_dir, exist_ok=True)
    log(f"args {vars(a)}")
    return a


def save_pipeline(pipe, out: str, meta_name: str, meta: dict) -> str:
    """Write ``pipe`` (``save_pretrained``, safetensors) and ``meta`` as ``meta_name`` to the folder
    ``out``, replacing it only once the new folder is complete: an interrupted export leaves the
    previous model in place."""
    out = os.path.abspath(out)
    tmp, old = out + ".tmp", out + ".old"
    for d in (tmp, old):
        shutil.rmtree(d, ignore_errors=True)
    pipe.save_pretrained(tmp, safe_serialization=True)
    with open(os.path.join(tmp, meta_name), "w") as f:
        json.dump(meta, f, indent=2)
    if os.path.exists(out):
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out


def export_main(doc: str, export, ckpt_dir: str, out: str, argv=None) -> None:
    """The command line of an export script: ``export(ckpt_dir, out, use_ema)`` returns the folder."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt-dir", default=ckpt_dir)
    p.add_argument("--out", default=out)
    p.add_argument("--no-ema", action="store_true", help="export the raw weights instead of the EMA")
    a = p.parse_args(argv)
    folder = export(a.ckpt_dir, os.path.abspath(a.out), use_ema=not a.no_ema)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
    print(f"exported to {folder} ({size / 1e6:.1f} MB)")
