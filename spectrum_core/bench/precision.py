"""How far the float16-stored moments move the forecast: ``python -m spectrum_core.bench.precision [--out FILE]``.

The Chebyshev forecaster stores the moments of 16-bit features in scaled float16 (``compact``, the default)
instead of float32. This replays real trajectories — the block-stack outputs of full 50-step runs of the
embedded ``shapes`` (FLUX, 2 CFG branches) and ``moving`` (Wan, 2 CFG branches) models, recorded by a
pre-hook on the output head, with the model run in float32 and in bfloat16 — through both forecasters fed
the same bf16 features, and reports at every forecast step of each schedule the relative difference
‖compact − float32‖ / ‖float32‖ (Frobenius over the whole feature). The goal is ≤ 1e-3 everywhere.

Schedules: the reference rule at 14 and 10 real passes of 50 (α = 0.75, 3), with w = 0.5 and w = 1.
"""

from __future__ import annotations

import argparse
import json
import pathlib
from typing import Any

import torch

from ..method.forecasters import ChebyshevForecaster
from ..method.schedule import real_steps
from .models import EMBEDDED, _embedded, embedded_available, samples

STEPS = 50
SCHEDULES = {"14 of 50": real_steps(STEPS, warmup=5, window=2.0, alpha=0.75),
             "10 of 50": real_steps(STEPS, warmup=5, window=2.0, alpha=3.0)}
BLENDS = (0.5, 1.0)
GOAL = 1e-3


def record(pipe: Any, model: Any, prompt: str, seed: int) -> list[list[torch.Tensor]]:
    """The head's input at every transformer call of one full run, as bf16, per branch: [branch][step]."""
    calls: list[torch.Tensor] = []
    head = pipe.transformer.norm_out
    handle = head.register_forward_pre_hook(lambda _m, args: calls.append(args[0].detach().to(torch.bfloat16)))
    try:
        pipe(prompt, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), output_type="latent",
             **model.call_kwargs)
    finally:
        handle.remove()
    per_step = len(calls) // STEPS
    return [[calls[t * per_step + b] for t in range(STEPS)] for b in range(per_step)]


def compare(trajectory: list[torch.Tensor], steps: list[int], blend: float) -> list[float]:
    """Relative difference compact vs float32 state at every forecast step of ``steps``."""
    compact, exact = ChebyshevForecaster(blend=blend), ChebyshevForecaster(blend=blend, compact=False)
    out = []
    for step, feature in enumerate(trajectory):
        tau = 2.0 * step / STEPS - 1.0
        if step in steps:
            compact.update(tau, feature)
            exact.update(tau, feature)
            continue
        ref = exact.predict(tau).double()
        out.append(float((compact.predict(tau).double() - ref).norm() / ref.norm()))
    assert compact._moments.dtype == torch.float16 and exact._moments.dtype == torch.float32
    return out


def run(n_samples: int = 2) -> list[dict]:
    rows = []
    for name in EMBEDDED:
        if not embedded_available(name):
            continue
        model = _embedded(name)
        for dtype in (torch.float32, torch.bfloat16):
            pipe = model.load().to(dtype)
            for prompt, seed in samples(model, n_samples):
                for branch, trajectory in enumerate(record(pipe, model, prompt, seed)):
                    for label, steps in SCHEDULES.items():
                        for blend in BLENDS:
                            diffs = compare(trajectory, steps, blend)
                            rows.append({"model": name, "model_dtype": str(dtype).replace("torch.", ""),
                                         "prompt": prompt, "seed": seed, "branch": branch, "schedule": label,
                                         "blend": blend, "shape": list(trajectory[0].shape),
                                         "max_relative": max(diffs), "mean_relative": sum(diffs) / len(diffs)})
            del pipe
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2, help="(prompt, seed) pairs per model")
    parser.add_argument("--out", default="outputs/bench/precision.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = run(args.samples)
    print(f"{'model':7} {'run in':9} {'schedule':9} {'w':>4} {'max rel':>9} {'mean rel':>9}  (over samples and branches)")
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["model_dtype"], row["schedule"], row["blend"]), []).append(row)
    for (model, dtype, label, blend), group in groups.items():
        worst = max(r["max_relative"] for r in group)
        mean = sum(r["mean_relative"] for r in group) / len(group)
        print(f"{model:7} {dtype:9} {label:9} {blend:4} {worst:9.2e} {mean:9.2e}")
    worst = max(r["max_relative"] for r in rows)
    print(f"worst {worst:.2e} (goal <= {GOAL:.0e}): {'met' if worst <= GOAL else 'NOT met'}")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"goal": GOAL, "worst": worst, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
