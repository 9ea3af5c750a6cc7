"""What stacking costs or saves, measured: ``python -m spectrum_core.bench.stack [--device cuda] [--out FILE]``.

Prints a table and writes JSON (outputs/bench/stack.json by default):

- forecaster update and predict at FLUX-1024² (and Wan-480p with ``--wan``) features: the chunked single
  pass (today's code) against whole-row arithmetic (one pass per axpy, the previous code), median of the
  14 updates of a 14-of-50 run (both with today's state: float16 moments for bf16 features), and the state
  bytes on the device with ``forecast_state`` device / cpu against the reference's buffer of 14 features
  (``spectrum_core.bench.cost`` compares today's state and update with the float32 whole-row ones);
- images/s of tiny-flux at batch sizes 1, 2, 4 against one-by-one calls (paired: same jobs, median of
  ``--repeats`` with min-max).

Whether the output survives sequential offload, group offloading with CUDA streams, inductor compilation
and the pinned copies of ``forecast_state="cpu"`` on a GPU (with each call's peak memory) is
``spectrum_core.bench.stack_checks``; neither has been run on a GPU here.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time

import torch

from ..method import forecasters
from ..method.forecasters import ChebyshevForecaster
from ..method.schedule import real_steps


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def update_cost(shape: tuple[int, int], dtype: torch.dtype, device: str, whole_rows: bool) -> dict:
    original = forecasters._chunk
    if whole_rows:
        forecasters._chunk = lambda t: 1 << 62
    try:
        gen = torch.Generator().manual_seed(0)
        feats = [torch.randn((1, *shape), generator=gen).to(device=device, dtype=dtype) for _ in range(2)]
        f = ChebyshevForecaster(blend=0.5)
        times = []
        for i, step in enumerate(real_steps(50, warmup=5, window=2.0, alpha=0.75)[:14]):
            _sync(device)
            t0 = time.perf_counter()
            f.update(2 * step / 50 - 1, feats[i % 2])
            _sync(device)
            times.append(time.perf_counter() - t0)
        _sync(device)
        t0 = time.perf_counter()
        f.predict(0.0)
        _sync(device)
        predict = time.perf_counter() - t0
        numel = shape[0] * shape[1]
        e = feats[0].element_size()
        return {"update_seconds": statistics.median(times[1:]), "update_spread": [min(times[1:]), max(times[1:])],
                "predict_seconds": predict, "state_bytes": f.state_bytes(), "reference_bytes": 14 * numel * e}
    finally:
        forecasters._chunk = original


def batch_throughput(device: str, repeats: int) -> list[dict]:
    from ..app.presets import load_preset
    from ..app.request import build_job
    from ..app.runner import Runner

    preset = load_preset("tiny-flux")
    runner = Runner(preset, device=device)
    jobs = [build_job(preset, f"prompt {i}", {"seed": i, "steps": 20, "nfe": 10}) for i in range(4)]
    runner.generate(jobs[0])  # warm-up
    rows = []
    for size in (1, 2, 4):
        samples = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            for start in range(0, len(jobs), size):
                runner.generate_batch(jobs[start:start + size])
            samples.append(len(jobs) / (time.perf_counter() - t0))
        rows.append({"batch_size": size, "images_per_second": statistics.median(samples),
                     "spread": [min(samples), max(samples)]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--wan", action="store_true", help="also Wan-480p features (~5 GB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="outputs/bench/stack.json")
    args = parser.parse_args()
    torch.set_num_threads(1 if args.device == "cpu" else torch.get_num_threads())
    shapes = {"FLUX-1024²": (4096, 3072)} | ({"Wan-480p": (32760, 5120)} if args.wan else {})
    cost = []
    print(f"{'feature':12} {'dtype':9} {'whole rows ms':>14} {'chunked ms':>11} {'state/ref':>9} {'host mode dev/ref':>17}")
    for name, shape in shapes.items():
        for dtype in (torch.float32, torch.bfloat16):
            old = update_cost(shape, dtype, args.device, whole_rows=True)
            new = update_cost(shape, dtype, args.device, whole_rows=False)
            row = {"feature": name, "dtype": str(dtype).replace("torch.", ""), "whole_rows": old, "chunked": new,
                   "state_vs_reference": new["state_bytes"] / new["reference_bytes"],
                   "device_state_vs_reference_with_forecast_state_cpu": 0.0}
            cost.append(row)
            print(f"{name:12} {row['dtype']:9} {old['update_seconds'] * 1e3:14.1f} {new['update_seconds'] * 1e3:11.1f} "
                  f"{row['state_vs_reference']:9.2f} {0.0:17.2f}")
    batches = batch_throughput(args.device, args.repeats)
    print(f"{'batch':>5} {'images/s':>9} {'min-max':>15}")
    for row in batches:
        print(f"{row['batch_size']:5} {row['images_per_second']:9.2f} {row['spread'][0]:7.2f}-{row['spread'][1]:.2f}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"device": args.device, "cost": cost, "batches": batches}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
