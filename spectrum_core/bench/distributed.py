"""What several GPUs buy, measured on the user's own machine: run under torchrun.

    torchrun --nproc-per-node 2 -m spectrum_core.bench.distributed -m flux --nfe 14 \\
        --context-parallel ulysses:2 --out outputs/bench/distributed.json

Every rank loads the model on its own device (LOCAL_RANK). Then, side by side in one launch:

1. single: rank 0 alone generates ``--repeats`` images (the others wait), timed per image;
2. data parallel: every rank generates ``--repeats`` images of its own at once; throughput is all
   images over the slowest rank's wall time;
3. context parallel (with ``--context-parallel KIND:N``): the world computes one image together through
   diffusers' context parallelism, ``--repeats`` times; latency per image, and the output's PSNR
   against the single-device image of the same seed (they should agree to float tolerance).

All with Spectrum on at the preset's settings (or ``--nfe``). Timers read after a device synchronize.
Rank 0 prints a table and writes JSON. On a CPU-only machine this runs with gloo (a smoke test; the
CPU's cores are shared, so the ratios mean nothing there) and skips context parallelism, which
diffusers 0.42 only sets up on an accelerator.

Not exercised by the project's own CI (it has no GPU): nccl, several GPUs, several nodes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _sync(device: str) -> None:
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def _timed(runner: Any, job: Any, device: str) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    result = runner.generate(job)
    _sync(device)
    return time.perf_counter() - start, result


def _psnr(a: Any, b: Any) -> float:
    from ..app.metrics import psnr

    return float(psnr(a, b))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spectrum_core.bench.distributed", description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", default="tiny-flux", help="a preset name (default tiny-flux)")
    parser.add_argument("--device", default="auto", help="cuda (each rank takes cuda:LOCAL_RANK) or cpu")
    parser.add_argument("--nfe", type=int, default=None, help="real passes (default: the preset's)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3, help="images per measurement (after one warm-up)")
    parser.add_argument("--context-parallel", default=None, metavar="KIND:N", help="ulysses:N or ring:N")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/distributed.json"))
    args = parser.parse_args(argv)

    import diffusers
    import torch
    import transformers

    from ..app import distributed
    from ..app.presets import load_preset
    from ..app.request import build_job
    from ..app.runner import Runner, resolve_device

    context = distributed.ContextParallel.parse(args.context_parallel) if args.context_parallel else None
    world = distributed.World.from_env(context=context)
    device = world.device(resolve_device(args.device))
    if context is not None and not str(device).startswith("cuda"):
        if world.is_main:
            print("context parallelism skipped: diffusers sets it up on an accelerator only", file=sys.stderr)
        context, world = None, distributed.World.from_env()
    diffusers.utils.logging.disable_progress_bar()  # ranks' loading bars would interleave
    transformers.utils.logging.disable_progress_bar()
    preset = load_preset(args.model)
    knobs = {"nfe": args.nfe, "steps": args.steps, "seed": 0}
    rows: list[dict[str, Any]] = []
    with distributed.process_group(world, device) as mesh:
        runner = Runner(preset, device=device)
        prompt = "a red circle on a navy background"
        jobs = [build_job(preset, prompt, {**knobs, "seed": world.rank * 1000 + i}) for i in range(args.repeats + 1)]
        runner.generate(jobs[0])  # warm-up: kernels, allocator, lazy imports

        single: list[float] = []
        reference = None
        if world.is_main:
            for job in jobs[1:]:
                seconds, result = _timed(runner, job, device)
                single.append(seconds)
            reference = _timed(runner, build_job(preset, prompt, knobs), device)[1].media
        distributed.barrier(world)
        rows.append({"mode": "single", "ranks": 1, "images": len(single),
                     "seconds_per_image": statistics.median(single) if single else None})

        distributed.barrier(world)
        start = time.perf_counter()
        for job in jobs[1:]:
            runner.generate(job)
        _sync(device)
        walls = distributed.gather_to_main(time.perf_counter() - start, world)
        if world.is_main:
            wall = max(walls)
            rows.append({"mode": "data parallel", "ranks": world.size, "images": args.repeats * world.size,
                         "images_per_second": args.repeats * world.size / wall,
                         "speedup_vs_single": (args.repeats * world.size / wall) * statistics.median(single)})

        if context is not None:
            distributed.enable_context_parallel(runner.pipe, world, mesh)
            runner.generate(build_job(preset, prompt, knobs))  # warm-up of the split model
            latencies, image = [], None
            for _ in range(args.repeats):
                seconds, result = _timed(runner, build_job(preset, prompt, knobs), device)
                latencies.append(seconds)
                image = result.media
            if world.is_main:
                latency = statistics.median(latencies)
                rows.append({"mode": f"context parallel {context}", "ranks": world.size, "images": args.repeats,
                             "seconds_per_image": latency, "speedup_vs_single": statistics.median(single) / latency,
                             "psnr_vs_single": _psnr(image, reference)})
    if world.is_main:
        print(f"{'mode':28} {'ranks':>5} {'images':>6}  result")
        for row in rows:
            extra = ", ".join(f"{k}={v:.3g}" for k, v in row.items()
                              if isinstance(v, float) and k not in ("ranks", "images"))
            print(f"{row['mode']:28} {row['ranks']:>5} {row['images']:>6}  {extra}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"model": preset.name, "device": str(device),
                                        "torch": torch.__version__, "rows": rows}, indent=1, allow_nan=False))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
