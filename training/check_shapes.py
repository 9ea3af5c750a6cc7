"""Load an exported shapes pipeline with ``FluxPipeline.from_pretrained`` and measure its quality.

    python training/check_shapes.py                                  # spectrum_core/models/embedded/shapes/
    python training/check_shapes.py --path /tmp/shapes --n 48 --grid /tmp/grid.png

Runs the fixed prompts of :func:`spectrum_core.models.shapes.eval_prompts` (50 steps, seed 0, one batch),
scores each image with :func:`spectrum_core.models.shapes.check_image` and prints the pass rates of
background colour, shape colour and shape class, plus the wall time per image.
Also checks that the pipeline's prompt encoding is identical (to 1e-5) to what training used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import shapes_components as C  # noqa: E402
import train_shapes as T  # noqa: E402
from shapes_components import shapes  # noqa: E402
from export_shapes import DEFAULT_OUT  # noqa: E402


def main(argv=None) -> dict:
    from diffusers import FluxPipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", default=DEFAULT_OUT)
    p.add_argument("--n", type=int, default=24, help="number of fixed prompts (>= 24)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", default=None, help="save the images as a PNG grid here")
    a = p.parse_args(argv)

    pipe = FluxPipeline.from_pretrained(a.path)
    pipe.set_progress_bar_config(disable=True)
    prompts = shapes.eval_prompts(a.n)
    kw = shapes.call_kwargs(len(prompts), num_inference_steps=a.steps)

    e, pooled, _ = pipe.encode_prompt(prompts[:4], None, max_sequence_length=kw["max_sequence_length"])
    e2, pooled2 = C.encode_prompts(prompts[:4])
    ok = torch.allclose(e, e2, atol=1e-5) and torch.allclose(pooled, pooled2, atol=1e-5)
    assert ok, "the pipeline encodes prompts differently from training"

    t0 = time.time()
    out = pipe(prompts, generator=torch.Generator().manual_seed(a.seed), output_type="np", **kw).images
    dt = time.time() - t0
    imgs = (out * 255).round().astype(np.uint8)
    results = [shapes.check_image(im, pr) for im, pr in zip(imgs, prompts)]
    rates = {k: float(np.mean([r[k] for r in results])) for k in ("background", "colour", "shape")}
    rates["all"] = float(np.mean([all(r.values()) for r in results]))
    for pr, r, im in zip(prompts, results, imgs):
        an = shapes.analyse_image(im)
        flag = "ok " if all(r.values()) else "BAD"
        print(f"{flag} {pr:45s} -> bg {an.background:5s} colour {an.colour} shape {an.shape} (fill {an.fill:.2f})")
    print(json.dumps({"pass_rates": rates, "seconds_per_image": dt / len(prompts), "n": len(prompts)}))
    if a.grid:
        T.save_grid(imgs, a.grid)
    return rates


if __name__ == "__main__":
    main()
