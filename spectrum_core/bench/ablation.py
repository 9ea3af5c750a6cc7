"""One knob at a time: which of Spectrum's settings matter on a model, at 14 and 10 of 50 real passes.

    python -m spectrum_core.bench.ablation                    # the embedded trained image model, 8 samples
    python -m spectrum_core.bench.ablation --model moving --samples 8

Each row changes one setting of the Chebyshev forecaster from the paper's (M=4, λ=0.1, w=1, Spectrum's
schedule) and reports PSNR against the 50-step output (mean ± std over the benchmark's fixed samples), next
to Taylor order 1 on the same schedule. BENCHMARKS.md quotes its output.
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
import torch

from ..app import metrics
from ..hooks.spectrum import apply_spectrum
from ..method.config import SpectrumConfig
from .models import generate, resolve_models, samples

INTERVAL = {14: 4, 10: 6}


def variants(budget: int) -> dict[str, SpectrumConfig]:
    n = INTERVAL[budget]
    return {
        "paper: M=4, λ=0.1, w=1": SpectrumConfig(nfe=budget, blend=1.0),
        "λ=0.001": SpectrumConfig(nfe=budget, ridge=1e-3, blend=1.0),
        "λ=1": SpectrumConfig(nfe=budget, ridge=1.0, blend=1.0),
        "M=2": SpectrumConfig(nfe=budget, degree=2, blend=1.0),
        "M=6": SpectrumConfig(nfe=budget, degree=6, blend=1.0),
        "w=0.5 (reference scripts)": SpectrumConfig(nfe=budget, blend=0.5),
        "w=0.75": SpectrumConfig(nfe=budget, blend=0.75),
        f"uniform schedule N={n}": SpectrumConfig(interval=n, warmup=3, blend=1.0),
        f"uniform schedule N={n}, w=0.5": SpectrumConfig(interval=n, warmup=3, blend=0.5),
        "taylor o1, same schedule": SpectrumConfig(forecaster="taylor", nfe=budget),
    }


def run_ablation(model_name: str = "shapes", n_samples: int = 8, budgets: tuple[int, ...] = (14, 10),
                 log: Callable[[str], None] = print) -> list[dict]:
    """PSNR of every variant at every budget; returns the rows it logs."""
    (model,) = resolve_models([model_name], quick=False)
    pipe = model.load()
    pipe.set_progress_bar_config(disable=True)
    pairs = samples(model, n_samples)
    refs = [generate(pipe, model, p, s) for p, s in pairs]
    rows = []
    for budget in budgets:
        for name, cfg in variants(budget).items():
            values = []
            for (prompt, seed), ref in zip(pairs, refs):
                with apply_spectrum(pipe, cfg):
                    values.append(metrics.psnr(generate(pipe, model, prompt, seed), ref))
            row = {"model": model.name, "budget": budget, "variant": name, "psnr_mean": float(np.mean(values)),
                   "psnr_std": float(np.std(values))}
            rows.append(row)
            log(f"| {budget} | {name} | {row['psnr_mean']:.2f} ± {row['psnr_std']:.2f} |")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="shapes")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| Budget | Chebyshev forecaster, one change | PSNR (dB) |\n|---|---|---|")
    run_ablation(args.model, args.samples)


if __name__ == "__main__":
    main()
