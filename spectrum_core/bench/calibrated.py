"""The calibrated default against every baseline, on samples calibration never saw: paired, with spread.

    python -m spectrum_core.bench.calibrated                       # shapes and moving, 16 samples each
    python -m spectrum_core.bench.calibrated --models shapes --samples 8 --out outputs/calibrated

For each embedded trained model it runs the benchmark's fixed samples (``models.samples``: the
``eval_prompts`` × seeds 0 and 1, which ``spectrum calibrate`` excludes) and scores every method by PSNR of
the decoded output against the full-step output of the same prompt and seed:

- at 10 and 14 of 50 real passes: the default (the shipped profile for that model, steps, guidance and
  budget — Spectrum on its calibrated steps with its calibrated forecaster), the reference (w=0.5 on the
  paper's schedule), Taylor o1/o2 and reuse on the paper's schedule, TaylorSeer on its own uniform schedule
  (O=1, 2), diffusers' TaylorSeerCache lite (O=1, 2), FirstBlockCache and MagCache (tuned to the budget on
  a held-out sample, as ``bench.methods`` does), and cache-dit's DBCache with its TaylorSeer, FoCa and DMD
  calibrators on a static step mask of the budget, separate CFG (when the ``cache_dit`` package imports);
- a fidelity curve over 8 … 20 of 50 for the default, the reference and the strongest fixed-budget
  baselines (reuse, Taylor o1, diffusers TaylorSeerCache lite O=1);
- at 8 of 30 steps, after calibrating for 30 (the shipped ``-s30`` profiles), the same comparison
  without the threshold-tuned caches.

Each baseline's row carries the paired difference default − baseline per sample: mean, standard error and
the worst sample. Real passes are counted (``methods.PassCounter``). Prints tables, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..app import metrics
from ..app import profiles
from ..method.config import SpectrumConfig
from ..method.schedule import uniform_steps
from .methods import (CALIBRATED, Applied, Method, PassCounter, _bisect_threshold, _enable, _mag_ratios, _ours,
                      _taylorseer_schedule_nfe, calibrated_default)
from .models import BenchModel, generate, heldout_samples, resolve_models, samples
from .report import clean

CURVE = (8, 10, 12, 14, 16, 18, 20)
FULL = (10, 14)
DEFAULT = CALIBRATED


def _uniform_interval(steps: int, budget: int, warmup: int = 3) -> int | None:
    for interval in range(1, steps):
        if len(uniform_steps(steps, warmup, interval)) == budget:
            return interval
    return None


def _cache_dit(steps: int, budget: int, calibrator: str) -> Callable[[Any], Applied]:
    """cache-dit's DBCache (first block computed, the rest cached) on a static step mask with exactly
    ``budget`` full steps — TaylorSeer's uniform schedule (warm-up 3) — separate CFG, and one calibrator."""
    import cache_dit

    interval = _uniform_interval(steps, budget)
    real = set(uniform_steps(steps, 3, interval)) if interval else set(range(budget))
    mask = [1 if s in real else 0 for s in range(steps)]
    make = {"TaylorSeer": lambda: cache_dit.TaylorSeerCalibratorConfig(taylorseer_order=1),
            "FoCa": lambda: cache_dit.FoCaCalibratorConfig(), "DMD": lambda: cache_dit.DMDCalibratorConfig()}

    def apply(pipe: Any) -> Applied:
        cache_dit.enable_cache(pipe, cache_config=cache_dit.DBCacheConfig(
            Fn_compute_blocks=1, Bn_compute_blocks=0, enable_separate_cfg=True, num_inference_steps=steps,
            max_warmup_steps=3, steps_computation_mask=mask, steps_computation_policy="static"),
            calibrator_config=make[calibrator]())
        return Applied(lambda: cache_dit.disable_cache(pipe))

    return apply


def cache_dit_status() -> str | None:
    """None when cache-dit is usable, else why not."""
    try:
        import cache_dit  # noqa: F401
    except Exception as exc:  # not installed, or fails to import
        return f"cache-dit not importable: {type(exc).__name__}: {exc}"[:200]
    return None


def methods_for(pipe: Any, model: BenchModel, steps: int, budget: int, *, full: bool, tune: Callable[[], Any],
                log: Callable[[str], None]) -> tuple[list[Method], dict[str, str]]:
    from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    out: list[Method] = []
    skipped: dict[str, str] = {}
    cfg, ident = calibrated_default(model.name, steps, budget)
    if ident == profiles.REFERENCE:
        skipped[DEFAULT] = f"no shipped profile for {model.name} at {budget} of {steps}"
    else:
        out.append(Method(DEFAULT, "default", budget, {**cfg.to_dict(), "profile": ident}, _ours(cfg)))
    ours = {
        "spectrum reference (w=0.5, paper schedule)": SpectrumConfig(nfe=budget, blend=0.5),
        "reuse (paper schedule)": SpectrumConfig(forecaster="reuse", nfe=budget),
        "taylor o1 (paper schedule)": SpectrumConfig(forecaster="taylor", nfe=budget, taylor_order=1),
    }
    if full:
        ours["taylor o2 (paper schedule)"] = SpectrumConfig(forecaster="taylor", nfe=budget, taylor_order=2)
        interval = _uniform_interval(steps, budget)
        if interval is not None:
            for order in (1, 2):
                ours[f"TaylorSeer N={interval} O={order}"] = SpectrumConfig(
                    forecaster="taylor", interval=interval, warmup=3, taylor_order=order)
    out += [Method(name, "spectrum", budget, c.to_dict(), _ours(c)) for name, c in ours.items()]

    # diffusers' TaylorSeerCache lite, knobs giving the budget at this step count
    candidates = [(b, n) for b in range(1, 8) for n in range(2, 13)]
    before, interval = min(candidates, key=lambda bn: (abs(_taylorseer_schedule_nfe(*bn, steps=steps) - budget),
                                                       abs(bn[0] - 3), bn[1]))
    for order in ((1, 2) if full else (1,)):
        def factory(order=order):
            return TaylorSeerCacheConfig(cache_interval=interval, disable_cache_before_step=before, max_order=order,
                                         use_lite_mode=True, taylor_factors_dtype=torch.float32)
        out.append(Method(f"diffusers TaylorSeerCache lite O={order}", "diffusers", budget,
                          {"cache_interval": interval, "disable_cache_before_step": before, "max_order": order},
                          _enable(factory)))
    if full and steps == 50:
        try:
            threshold, tuned, _ = _bisect_threshold(
                pipe, tune, lambda t: _enable(lambda: FirstBlockCacheConfig(threshold=t)), budget, 1e-4, 4.0, 9)
            out.append(Method("diffusers FirstBlockCache", "diffusers", budget, {"threshold": threshold,
                              "tuning_nfe": tuned}, _enable(lambda t=threshold: FirstBlockCacheConfig(threshold=t)),
                              note="adaptive: NFE varies per sample"))
        except Exception as exc:
            skipped["diffusers FirstBlockCache"] = f"{type(exc).__name__}: {exc}"[:200]
        try:
            ratios = _mag_ratios(pipe, tune)
            knobs = dict(retention_ratio=0.1, max_skip_steps=12, num_inference_steps=50)

            def mag(t: float, ratios=ratios):
                return _enable(lambda: MagCacheConfig(threshold=t, mag_ratios=list(ratios), **knobs))

            threshold, tuned, _ = _bisect_threshold(pipe, tune, mag, budget, 1e-4, 10.0, 9)
            out.append(Method("diffusers MagCache", "diffusers", budget, {"threshold": threshold, **knobs,
                              "tuning_nfe": tuned}, mag(threshold), note="adaptive: NFE varies per sample"))
        except Exception as exc:
            skipped["diffusers MagCache"] = f"{type(exc).__name__}: {exc}"[:200]
    if full:
        why = cache_dit_status()
        if why is None:
            for calibrator in ("TaylorSeer", "FoCa", "DMD"):
                out.append(Method(f"cache-dit DBCache F1B0 + {calibrator}", "cache-dit", budget,
                                  {"calibrator": calibrator, "mask": "TaylorSeer uniform, warm-up 3",
                                   "enable_separate_cfg": True}, _cache_dit(steps, budget, calibrator),
                                  note="first block computed on every step"))
        else:
            skipped["cache-dit"] = why
    return out, skipped


def _paired(default: list[float], other: list[float]) -> dict[str, float]:
    d = np.asarray(default) - np.asarray(other)
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0,
            "min": float(d.min())}


def run_model(model: BenchModel, n_samples: int, steps: int, budgets: tuple[int, ...], full_budgets: tuple[int, ...],
              log: Callable[[str], None] = print, heldout: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    pipe = model.load()
    pipe.set_progress_bar_config(disable=True)
    pairs = samples(model, n_samples) if heldout is None else heldout_samples(model, n_samples, heldout)
    tune_prompt = pairs[0][0]
    tune = lambda: generate(pipe, model, tune_prompt, 1000, steps)  # noqa: E731  (held out: seed 1000)
    per_budget = {}
    skipped: dict[str, str] = {}
    for k in budgets:
        methods, why = methods_for(pipe, model, steps, k, full=k in full_budgets, tune=tune, log=log)
        per_budget[k] = methods
        skipped.update({f"{name} @{k}": v for name, v in why.items()})
    scores = {k: {m.name: {"psnr": [], "nfe": [], "block_passes": []} for m in ms} for k, ms in per_budget.items()}
    counter = PassCounter(pipe)
    # cache-dit patches the transformer's forward for good (disable_cache leaves the patch), which breaks
    # diffusers' own hooks afterwards: it runs on a second copy of the pipeline
    other = None
    if any(m.group == "cache-dit" for ms in per_budget.values() for m in ms):
        other = model.load()
        other.set_progress_bar_config(disable=True)
    other_counter = PassCounter(other) if other is not None else None
    try:
        for i, (prompt, seed) in enumerate(pairs):
            log(f"  {model.name} {steps} steps: sample {i + 1}/{len(pairs)} ({prompt!r}, seed {seed})")
            reference = generate(pipe, model, prompt, seed, steps)
            for k, ms in per_budget.items():
                for m in ms:
                    target, count = (other, other_counter) if m.group == "cache-dit" else (pipe, counter)
                    count.reset()
                    applied = m.apply(target)
                    try:
                        out = generate(target, model, prompt, seed, steps)
                    finally:
                        applied.remove()
                    rec = scores[k][m.name]
                    value = metrics.psnr(out, reference) if np.isfinite(out).all() else float("nan")
                    rec["psnr"].append(min(value, 100.0))
                    rec["nfe"].append(count.nfe(steps))
                    rec["block_passes"].append(count.block_passes(steps))
    finally:
        counter.close()
        if other_counter is not None:
            other_counter.close()
    rows = []
    for k, ms in per_budget.items():
        base = scores[k].get(DEFAULT)
        for m in ms:
            rec = scores[k][m.name]
            p = np.asarray(rec["psnr"])
            row = {"budget": k, "method": m.name, "group": m.group, "psnr_mean": float(p.mean()),
                   "psnr_std": float(p.std()), "nfe_mean": float(np.mean(rec["nfe"])),
                   "block_passes_mean": float(np.mean(rec["block_passes"])), "per_sample": rec,
                   "settings": clean(m.settings), "note": m.note}
            if base is not None and m.name != DEFAULT:
                row["default_minus_this"] = _paired(base["psnr"], rec["psnr"])
            rows.append(row)
    return {"model": model.name, "steps": steps, "heldout": heldout,
            "samples": [{"prompt": p, "seed": s} for p, s in pairs],
            "tuning_sample": {"prompt": tune_prompt, "seed": 1000}, "rows": rows, "not_run": skipped,
            "seconds": time.perf_counter() - started}


def table(result: dict[str, Any]) -> str:
    base = result.get("heldout")
    which = "" if base is None else f", held out (seeds {base} + 53 i)"
    lines = [f"### {result['model']}, {result['steps']} steps, {len(result['samples'])} samples{which} "
             f"({result['seconds'] / 60:.1f} min)", "",
             "| budget | method | PSNR mean ± std | real passes | block passes | default − this (paired mean ± s.e., worst) |",
             "|---|---|---|---|---|---|"]
    for r in sorted(result["rows"], key=lambda r: (r["budget"], -r["psnr_mean"])):
        d = r.get("default_minus_this")
        diff = f"{d['mean']:+.2f} ± {d['se']:.2f} (worst {d['min']:+.2f})" if d else "—"
        lines.append(f"| {r['budget']} | {r['method']} | {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} | "
                     f"{r['nfe_mean']:.1f} | {r['block_passes_mean']:.1f} | {diff} |")
    for name, why in result["not_run"].items():
        lines.append(f"\nnot run: {name}: {why}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["shapes", "moving"])
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("outputs/calibrated"))
    parser.add_argument("--no-curve", action="store_true", help="only 10 and 14 of 50, and 8 of 30")
    parser.add_argument("--no-30", action="store_true", help="skip the 30-step comparison")
    parser.add_argument("--heldout", type=int, default=None, metavar="BASE",
                        help="score on random prompts and seeds BASE + 53 i instead of the bench's fixed samples "
                             "(e.g. 9100: neither the bench's nor calibration's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    results = []
    for model in resolve_models(args.models, False):
        budgets = FULL if args.no_curve else CURVE
        results.append(run_model(model, args.samples, 50, budgets, FULL, heldout=args.heldout))
        print(table(results[-1]), flush=True)
        if not args.no_30:
            results.append(run_model(model, args.samples, 30, (8,), (8,), heldout=args.heldout))
            print(table(results[-1]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "calibrated.json").write_text(json.dumps(clean(results), indent=1, allow_nan=False) + "\n")
    (args.out / "calibrated.md").write_text("\n".join(table(r) for r in results))
    print(f"wrote {args.out / 'calibrated.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
