"""Load an exported moving-shapes pipeline with ``WanPipeline.from_pretrained`` and measure its quality.

    python training/check_moving.py                                   # spectrum_core/models/embedded/moving/
    python training/check_moving.py --path /tmp/moving --n 16 --grid /tmp/clips.png --mp4 /tmp/clips

Runs the fixed prompts of :func:`spectrum_core.models.moving.eval_prompts` (50 steps, seed 0, one
batch, classifier-free guidance with ``guidance_scale`` > 1, i.e. separate cond/uncond transformer calls
per step, as Wan does), scores each clip with :func:`spectrum_core.models.moving.check_clip` and prints
the pass rates of background colour, shape colour, shape class and motion direction, plus the wall time
per clip. Also checks that the pipeline encodes prompts exactly as training did (to 1e-5) and that the
loaded components have the trained architecture. ``--mp4 DIR`` writes each clip as an H.264 MP4
(``spectrum_core.app.media.save_mp4``) and re-scores the decoded MP4s, so the video path is exercised too.
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
import moving_components as C  # noqa: E402
import train_moving as T  # noqa: E402
from moving_components import moving_shapes as M  # noqa: E402
from export_moving import DEFAULT_OUT  # noqa: E402


def main(argv=None) -> dict:
    from diffusers import WanPipeline

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--path", default=DEFAULT_OUT)
    p.add_argument("--n", type=int, default=16, help="number of fixed prompts")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance-scale", type=float, default=M.PIPELINE_CALL_DEFAULTS["guidance_scale"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--grid", default=None, help="save the clips as a PNG grid here (one clip per row)")
    p.add_argument("--mp4", default=None, help="write each clip as an MP4 into this folder and re-score them")
    a = p.parse_args(argv)

    pipe = WanPipeline.from_pretrained(a.path)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.vae.config.scale_factor_temporal == 4 and pipe.vae.config.scale_factor_spatial == 4
    assert dict(pipe.scheduler.config)["prediction_type"] == "flow_prediction"
    prompts = M.eval_prompts(a.n)
    kw = dict(M.PIPELINE_CALL_DEFAULTS, num_inference_steps=a.steps, guidance_scale=a.guidance_scale)

    e, neg = pipe.encode_prompt(prompts[:4], do_classifier_free_guidance=True, max_sequence_length=kw["max_sequence_length"])
    e2 = C.encode_prompts(prompts[:4] + [""] * 4)
    assert torch.allclose(e, e2[:4], atol=1e-5) and torch.allclose(neg, e2[4:], atol=1e-5), \
        "the pipeline encodes prompts differently from training"
    assert pipe.tokenizer.unk_token_id not in pipe.tokenizer(prompts).input_ids[0]

    t0 = time.time()
    out = pipe(prompts, generator=torch.Generator().manual_seed(a.seed), output_type="np", **kw).frames
    dt = time.time() - t0
    clips = (np.asarray(out) * 255).round().astype(np.uint8)
    assert clips.shape[1:] == (M.NUM_FRAMES, M.IMAGE_SIZE, M.IMAGE_SIZE, 3), clips.shape
    rates, results = T.score(clips, prompts)
    for pr, r, c in zip(prompts, results, clips):
        an = M.analyse_clip(c)
        mid = an.frames[len(an.frames) // 2]
        disp = "none" if an.displacement is None else f"({an.displacement[0]:+.1f}, {an.displacement[1]:+.1f})"
        flag = "ok " if all(r.values()) else "BAD"
        print(f"{flag} {pr:55s} -> bg {mid.background:5s} colour {mid.colour} shape {mid.shape} "
              f"moved {disp} = {an.direction}")
    report = {"pass_rates": rates, "seconds_per_clip": dt / len(prompts), "n": len(prompts),
              "guidance_scale": a.guidance_scale, "steps": a.steps}
    if a.grid:
        T.clip_grid(list(clips), a.grid)
    if a.mp4:
        from spectrum_core.app import media
        from pathlib import Path

        folder = Path(a.mp4)
        folder.mkdir(parents=True, exist_ok=True)
        fps = json.load(open(os.path.join(a.path, "spectrum_moving.json"))).get("fps", 8)
        back = []
        for i, (pr, c) in enumerate(zip(prompts, clips)):
            path = media.save_mp4(folder / f"{i:02d}_{media.slugify(pr)}.mp4", c, fps=fps, overwrite=True)
            back.append(media.read_mp4(path))
        report["mp4_pass_rates"] = T.score(np.stack(back), prompts)[0]
        report["mp4_dir"] = str(folder)
    print(json.dumps(report))
    return rates


if __name__ == "__main__":
    main()
