"""Fidelity: each method's final output against the 50-step output of the same prompt and seed.

For every model and budget (14 and 10 real passes of 50), every method runs on the same fixed prompts ×
seeds; PSNR and SSIM (``spectrum_core.app.metrics``) are taken against the unaccelerated 50-step output and
reported as mean ± std over the samples, together with the real passes each run made (counted by
``PassCounter``). diffusers' caches are tuned first on a held-out prompt/seed that is not scored.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch

from ..app import metrics
from .methods import STEPS, Method, PassCounter, diffusers_methods, our_methods
from .models import BenchModel, generate, samples


def _summary(values: list[float]) -> dict[str, float | None]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": float(np.mean(finite)), "std": float(np.std(finite)), "min": float(np.min(finite)),
            "max": float(np.max(finite))}


def run_model(model: BenchModel, budgets: tuple[int, ...], n_samples: int, *, include_diffusers: bool = True,
              quick: bool = False, method_filter: Callable[[Method], bool] | None = None,
              log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """All methods × budgets × samples on one model; a JSON-ready record."""
    started = time.perf_counter()
    pipe = model.load()
    pipe.set_progress_bar_config(disable=True)
    pairs = samples(model, n_samples)
    tune_prompt = pairs[0][0]
    tune_run = lambda: generate(pipe, model, tune_prompt, 1000)  # noqa: E731  (held out: seed 1000)

    methods: list[Method] = []
    skipped: dict[str, str] = {}
    for budget in budgets:
        methods += our_methods(pipe, budget, model.name)
        if include_diffusers:
            log(f"  tuning diffusers' caches to {budget} of {STEPS} passes on {model.name}")
            tuned, why = diffusers_methods(pipe, budget, tune_run, quick, log)
            methods += tuned
            skipped.update({f"{k} @{budget}": v for k, v in why.items()})
    if method_filter is not None:
        methods = [m for m in methods if method_filter(m)]

    per_method: dict[str, dict[str, list[float]]] = {m.key: {"psnr": [], "ssim": [], "nfe": [], "block_passes": [],
                                                             "reported_nfe": []} for m in methods}
    baseline_nfe: list[float] = []
    counter = PassCounter(pipe)
    try:
        for i, (prompt, seed) in enumerate(pairs):
            log(f"  {model.name}: sample {i + 1}/{len(pairs)} ({prompt!r}, seed {seed})")
            counter.reset()
            reference = generate(pipe, model, prompt, seed)
            baseline_nfe.append(counter.nfe())
            for method in methods:
                counter.reset()
                applied = method.apply(pipe)
                try:
                    out = generate(pipe, model, prompt, seed)
                    reported = applied.reported_nfe()
                finally:
                    applied.remove()
                rec = per_method[method.key]
                rec["psnr"].append(metrics.psnr(out, reference))
                rec["ssim"].append(metrics.ssim(out, reference))
                rec["nfe"].append(counter.nfe())
                rec["block_passes"].append(counter.block_passes())
                if reported is not None:
                    rec["reported_nfe"].append(reported)
                if not np.isfinite(out).all():
                    rec.setdefault("nonfinite", []).append(i)
    finally:
        counter.close()

    rows = []
    for method in methods:
        rec = per_method[method.key]
        nfe = _summary(rec["nfe"])
        rows.append({
            "method": method.name,
            "group": method.group,
            "budget": method.budget,
            "nfe": nfe,
            "nfe_exact": all(v == rec["nfe"][0] for v in rec["nfe"]) and float(rec["nfe"][0]).is_integer(),
            "reported_nfe_matches": (not rec["reported_nfe"]) or rec["reported_nfe"] == rec["nfe"],
            "block_passes": _summary(rec["block_passes"]),
            "nfe_speedup": STEPS / nfe["mean"] if nfe["mean"] else None,
            "psnr": _summary(rec["psnr"]),
            "ssim": _summary(rec["ssim"]),
            "per_sample": {k: rec[k] for k in ("psnr", "ssim", "nfe")},
            "nonfinite_samples": rec.get("nonfinite", []),
            "settings": _jsonable(method.settings),
            "note": method.note,
        })
    return {
        "model": model.name,
        "trained": model.trained,
        "label": model.label,
        "video": model.is_video,
        "call_kwargs": _jsonable(model.call_kwargs),
        "steps": STEPS,
        "samples": [{"prompt": p, "seed": s} for p, s in pairs],
        "tuning_sample": {"prompt": tune_prompt, "seed": 1000},
        "baseline_nfe": baseline_nfe,
        "rows": rows,
        "not_applicable": skipped,
        "seconds": time.perf_counter() - started,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.dtype):
        return str(value).replace("torch.", "")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
