"""The suite's report: sanity checks, the markdown tables and the PNG charts (matplotlib, optional)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from .methods import CALIBRATED

# --- checks ---------------------------------------------------------------------------------------------


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """What must hold whatever the machine: finite numbers, exact NFE for fixed schedules, speedup > 1."""
    out = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        out.append({"check": name, "ok": bool(ok), "detail": detail})

    for model in results.get("fidelity", []):
        name = model["model"]
        check(f"{name}: the 50-step baseline runs every block every step",
              all(n == 50 for n in model["baseline_nfe"]), f"{model['baseline_nfe']}")
        bad = [r["method"] + f" @{r['budget']}" for r in model["rows"]
               if not (_finite(r["psnr"]["mean"]) and _finite(r["ssim"]["mean"])) or r["nonfinite_samples"]]
        check(f"{name}: PSNR and SSIM finite for every method", not bad, ", ".join(bad))
        fixed = [r for r in model["rows"] if r["group"] in ("spectrum", "taylorseer")]
        bad = [f"{r['method']} @{r['budget']}: {r['nfe']['mean']}" for r in fixed
               if not (r["nfe_exact"] and r["nfe"]["mean"] == _target(r) and r["reported_nfe_matches"])]
        check(f"{name}: counted NFE equals the budget for every fixed schedule", not bad, ", ".join(bad))
    speed = results.get("speed")
    if speed:
        bad = [f"{r['method']} @{r['budget']}: {r['speedup']:.2f}x" for r in speed["rows"] if not r["speedup"] > 1]
        check("speed: every accelerated call is faster than the 50-step call", not bad, ", ".join(bad))
        bad = [f"{r['method']} @{r['budget']}" for r in speed["rows"] if not (r["nfe_exact"] and r["nfe"] == r["budget"])]
        check("speed: counted NFE equals the budget", not bad, ", ".join(bad))
        check("speed: block share in (0, 1)", 0 < speed["block_share"] < 1, f"{speed['block_share']:.3f}")
    cost = results.get("cost")
    if cost:
        bad = [f"{r['feature']} {r['dtype']}" for r in cost["rows"]
               if not all(_finite(r[k]) and r[k] > 0 for k in ("update_seconds", "predict_w1_seconds", "state_bytes"))]
        check("cost: positive finite times and sizes", not bad, ", ".join(bad))
    return out


def _target(row: dict[str, Any]) -> int:
    """The NFE a fixed schedule must hit: the budget, or the floor noted when it had to be raised."""
    note = row.get("note") or ""
    if note.startswith("budget raised to "):
        return int(note.split()[3].rstrip(":"))
    return row["budget"]


# --- markdown -------------------------------------------------------------------------------------------


def _pm(s: dict[str, Any], digits: int) -> str:
    if s["mean"] is None:
        return "n/a"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _nfe(s: dict[str, Any]) -> str:
    if s["std"] == 0:
        return f"{s['mean']:g}"
    return f"{s['mean']:.1f} ({s['min']:g}-{s['max']:g})"


GROUP_LABEL = {"spectrum": "Spectrum schedule", "taylorseer": "uniform (TaylorSeer)", "diffusers": "diffusers cache"}


def fidelity_table(model: dict[str, Any], budget: int) -> str:
    lines = ["| Method | Schedule | Real passes (counted) | NFE speedup | PSNR (dB) ↑ | SSIM ↑ |",
             "|---|---|---|---|---|---|"]
    rows = [r for r in model["rows"] if r["budget"] == budget]
    best = max((r["psnr"]["mean"] for r in rows if r["psnr"]["mean"] is not None), default=None)
    for r in rows:
        psnr = _pm(r["psnr"], 2)
        if best is not None and r["psnr"]["mean"] == best:
            psnr = f"**{psnr}**"
        lines.append(f"| {r['method']} | {GROUP_LABEL[r['group']]} | {_nfe(r['nfe'])} | "
                     f"{r['nfe_speedup']:.2f}x | {psnr} | {_pm(r['ssim'], 4)} |")
    return "\n".join(lines)


PAIRED_REFERENCE = "spectrum w=0.5"


def paired_table(model: dict[str, Any], budget: int, reference: str | None = None) -> str:
    """Each method against ``reference`` sample by sample (same prompt and seed): the mean PSNR difference
    with its standard error, and on how many samples the reference is closer to the 50-step output. The
    spread between prompts is large, so this says more than comparing two means ± std. The default
    reference is what `spectrum gen` runs: the calibrated default where the model ships a profile, else
    Spectrum w=0.5 on the paper's schedule."""
    rows = {r["method"]: r for r in model["rows"] if r["budget"] == budget}
    if reference is None:
        reference = CALIBRATED if CALIBRATED in rows else PAIRED_REFERENCE
    if reference not in rows:
        return ""
    ref = np.asarray(rows[reference]["per_sample"]["psnr"], dtype=float)
    lines = [f"| {reference} against | PSNR difference (dB), mean ± s.e. | {reference} closer on |", "|---|---|---|"]
    for name, r in rows.items():
        other = np.asarray(r["per_sample"]["psnr"], dtype=float)
        if name == reference or other.shape != ref.shape:
            continue
        diff = ref - other
        diff = diff[np.isfinite(diff)]
        if len(diff) < 2:
            continue
        se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
        lines.append(f"| {name} | {float(np.mean(diff)):+.2f} ± {se:.2f} | {int((diff > 0).sum())} of {len(diff)} |")
    return "\n".join(lines)


def speed_table(speed: dict[str, Any]) -> str:
    lines = ["| Method | Real passes | Seconds (median) | Speedup (median of rounds) | Amdahl limit | "
             "Measured / limit | Speedup per round |",
             "|---|---|---|---|---|---|---|",
             f"| 50 steps (baseline) | 50 | {speed['baseline_seconds']:.2f} | 1.00x | 1.00x | | |"]
    for r in speed["rows"]:
        rounds = ", ".join(f"{x:.2f}" for x in r.get("speedup_all_rounds", []))
        lines.append(f"| {r['method']} @{r['budget']} | {r['nfe']:g} | {r['seconds']:.2f} | {r['speedup']:.2f}x | "
                     f"{r['amdahl_limit']:.2f}x | {r['ratio_to_limit']:.2f} | {rounds} |")
    return "\n".join(lines)


def cost_table(cost: dict[str, Any]) -> str:
    bw = cost["memcpy_bytes_per_second"] / 1e9
    lines = [f"memcpy on this machine: **{bw:.1f} GB/s** (bytes read + written per second, best of 5 copies of "
             "256 MiB). *ideal* bytes: the least traffic each operation needs; *impl*: what our kernels stream.",
             "",
             "| Feature (tokens × dim) | dtype | variant (moments) | update ms | update GB/s ideal (impl) | "
             "impl / ideal | ideal / memcpy | predict w=1 ms | predict w=0.5 ms | state MiB w=1 (w=0.5) | "
             f"reference at {cost['passes']} passes MiB | state / reference w=1 (w=0.5) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in cost["rows"]:
        lines.append(
            f"| {r['feature']} ({r['shape'][0]}×{r['shape'][1]}) | {r['dtype']} | "
            f"{r.get('variant', 'now')} ({r.get('moments_dtype', 'float32')}) | {r['update_seconds'] * 1e3:.0f} | "
            f"{r['update_ideal_gbps']:.1f} ({r['update_impl_gbps']:.1f}) | "
            f"{r['update_impl_bytes'] / r['update_ideal_bytes']:.2f} | {r['update_ideal_vs_memcpy']:.2f} | "
            f"{r['predict_w1_seconds'] * 1e3:.0f} | {r['predict_w0.5_seconds'] * 1e3:.0f} | "
            f"{r.get('state_w1_bytes', r['state_bytes']) / 2**20:.0f} ({r['state_bytes'] / 2**20:.0f}) | "
            f"{r['reference_state_bytes'] / 2**20:.0f} | "
            f"{r.get('state_w1_vs_reference', r['state_vs_reference']):.2f} ({r['state_vs_reference']:.2f}) |")
    if cost.get("skipped"):
        lines += ["", "Not run: " + ", ".join(cost["skipped"]) + "."]
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    load = lambda v: ", ".join(f"{x:.2f}" for x in v) if v else "n/a"  # noqa: E731
    parts = [
        f"# Benchmark results{' (quick mode)' if results['quick'] else ''}",
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}; {results['seconds'] / 60:.1f} min  ",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, CPU only; torch {m['torch']}, "
        f"diffusers {m['diffusers']}, {m['threads']} torch thread(s)  ",
        f"Load average (1, 5, 15 min) at start: {load(m['load_average_start'])}; at end: "
        f"{load(m.get('load_average_end'))} — the machine is shared, so timings are noisy.",
        "",
    ]
    for model in results["fidelity"]:
        parts += [f"## Fidelity: {model['model']} — {model['label']}", ""]
        if not model["trained"]:
            parts += ["> **Random weights.** This model's trajectory barely moves, so smooth extrapolation "
                      "(Taylor) is favoured and the numbers say nothing about image quality on real models; "
                      "they check that every method runs, skips what it says and stays finite.", ""]
        parts += [f"{len(model['samples'])} prompt × seed pairs, each against the 50-step output of the same "
                  f"seed (mean ± std). diffusers' caches tuned on a held-out sample "
                  f"({model['tuning_sample']['prompt']!r}, seed {model['tuning_sample']['seed']}); adaptive ones "
                  "show the mean (range) of real passes they made.", ""]
        for budget in sorted({r["budget"] for r in model["rows"]}, reverse=True):
            parts += [f"### {budget} of 50 real passes", "", fidelity_table(model, budget), ""]
            paired = paired_table(model, budget)
            if paired:
                parts += ["Paired by sample:", "", paired, ""]
        tuned = [f"{r['method']} @{r['budget']}: " + ", ".join(
                     f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r["settings"].items())
                 for r in model["rows"] if r["group"] == "diffusers"]
        if tuned:
            parts += ["diffusers settings (tuning_nfe: real passes on the tuning sample):", ""]
            parts += [f"- {t}" for t in tuned] + [""]
        notes = sorted({f"{r['method']}: {r['note']}" for r in model["rows"] if r["note"]})
        if notes:
            parts += ["Notes: " + "; ".join(notes) + ".", ""]
        if model["not_applicable"]:
            parts += ["Not applicable to this model: " + "; ".join(f"{k} ({v})" for k, v in
                                                                   model["not_applicable"].items()), ""]
    if results.get("speed"):
        s = results["speed"]
        parts += ["## Speed", "", f"{s['model']}. {s['repeats']} rounds, each running the 50-step call and then every method once; "
                  "the speedup is the median over rounds of the within-round ratio. The baseline spends "
                  f"**{100 * s['block_share']:.1f}%** of its call in the transformer blocks (p), so the Amdahl "
                  "limit of a run with n real passes is 1 / ((1 - p) + p·n/50). 50-step call per round (s): "
                  + ", ".join(f"{x:.1f}" for x in s["baseline_seconds_all"]) + ".", "", speed_table(s), ""]
    if results.get("cost"):
        parts += ["## Forecaster cost (Chebyshev, M=4)", "", cost_table(results["cost"]), ""]
    if results.get("charts"):
        parts += ["## Charts", ""] + [f"![{Path(c).stem}]({Path(c).name})" for c in results["charts"]] + [""]
    parts += ["## Checks", ""] + [f"- [{'x' if c['ok'] else ' '}] {c['check']}"
                                   + (f" — {c['detail']}" if c["detail"] and not c["ok"] else "")
                                   for c in results["checks"]] + [""]
    return "\n".join(parts)


# --- charts ---------------------------------------------------------------------------------------------


def charts(results: dict[str, Any], out: Path) -> list[str]:
    """PNG charts into ``out``; an empty list when matplotlib (the ``bench`` extra) is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written = []
    for model in results["fidelity"]:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        # one curve per method across budgets: TaylorSeer's interval N is what changes with the budget
        curve = lambda name: re.sub(r" N=\d+", "", name)  # noqa: E731
        names = list(dict.fromkeys(curve(r["method"]) for r in model["rows"]))
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))  # dark hues first, then their light twins
        ax.set_prop_cycle(color=[plt.get_cmap("tab20")(order[i % 20]) for i in range(len(names))])
        for name in names:
            pts = sorted((r["nfe_speedup"], r["psnr"]["mean"]) for r in model["rows"]
                         if curve(r["method"]) == name and r["psnr"]["mean"] is not None)
            if not pts:
                continue
            style = "-o" if name.startswith("spectrum") else ("--s" if "TaylorSeer" in name else ":^")
            label = name.replace("TaylorSeer", "TaylorSeer N=4/6") if name.startswith("TaylorSeer") else name
            ax.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label, linewidth=2 if
                    name.startswith("spectrum") else 1.2)
        ax.set_xlabel("NFE speedup (50 / real passes counted)")
        ax.set_ylabel("PSNR vs 50 steps (dB, mean)")
        title = f"{model['model']}: fidelity vs speedup"
        if not model["trained"]:
            title += "\n(random-weight tiny model: plumbing, not fidelity)"
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
        fig.tight_layout()
        path = out / f"fidelity_{model['model']}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    speed = results.get("speed")
    if speed:
        fig, ax = plt.subplots(figsize=(7.5, 3.8))
        labels = [f"{r['method']}\n@{r['budget']}" for r in speed["rows"]]
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], [r["speedup"] for r in speed["rows"]], 0.4, label="measured")
        ax.bar([i + 0.2 for i in x], [r["amdahl_limit"] for r in speed["rows"]], 0.4, label="Amdahl limit")
        ax.set_xticks(list(x))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("speedup vs 50 steps")
        ax.set_title(f"Wall-clock speedup (block share p = {speed['block_share']:.3f})", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out / "speed.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written


def clean(value: Any) -> Any:
    """JSON-safe: non-finite floats become strings ("inf"), anything not JSON (a path, a dtype) its text."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def rewrite(out: Path) -> dict[str, Any]:
    """Redraw results.md and the charts from an existing results.json (after a report-only change)."""
    import json

    out = Path(out)
    results = json.loads((out / "results.json").read_text())
    results["charts"] = charts(results, out)
    (out / "results.md").write_text(markdown(results))
    return results
