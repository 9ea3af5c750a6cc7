"""Every accelerator the benchmarks compare, applied and removed the same way, and a counter of the real
block-stack passes each one actually made.

Three groups, all skipping whole transformer calls' block stacks:

- ``spectrum`` — our hooks on Spectrum's schedule (warm-up 5, growing windows) at the budget: Chebyshev
  with w=1 (the paper) and w=0.5 (the reference scripts), and the Taylor (order 1, 2) and reuse forecasters
  on that same schedule, so only the forecaster differs;
- ``taylorseer`` — TaylorSeer as the paper compares it: its own uniform schedule (steps 0-2 real, then every
  N-th: N=4 gives 14 of 50, N=6 gives 10), order 1 and 2, through our hooks (``SpectrumConfig.interval``);
- ``diffusers`` — diffusers' built-in caches that skip block stacks: ``TaylorSeerCacheConfig`` in lite mode
  (skip every block, forecast ``proj_out``; its default mode only forecasts attention outputs and still runs
  the rest of every block), ``FirstBlockCacheConfig`` and ``MagCacheConfig``. Their knobs are tuned on a
  held-out prompt/seed to the NFE nearest the budget and each run reports the NFE it really used.

NFE is counted, never computed from settings: ``PassCounter`` hooks a leaf module inside every block (a
skipped block's own hooks still fire, its leaves do not) and counts, per transformer call, how many blocks
ran. A call is a real pass when all its blocks ran; First Block Cache's skipped calls still run one block,
which shows in ``block_passes`` (blocks run / blocks per call).
"""

from __future__ import annotations

import ast
import contextlib
import io
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..method.config import SpectrumConfig
from ..hooks.families import expert_lengths, expert_names, family_for
from ..hooks.spectrum import apply_spectrum, nfe_bounds
from ..method.schedule import plan_segments

STEPS = 50
# TaylorSeer's interval for each budget, as the paper runs it (warm-up 3): N=4 -> 14 of 50, N=6 -> 10.
TAYLORSEER_INTERVAL = {14: 4, 10: 6}


def _denoisers(pipe: Any) -> list[torch.nn.Module]:
    return [getattr(pipe, name) for name in expert_names(pipe)]


class PassCounter:
    """Counts, per transformer call, how many transformer blocks really computed."""

    def __init__(self, pipe: Any):
        self.calls: list[int] = []       # blocks run in each transformer call
        self.blocks_per_call = 0
        self._handles = []
        for module in _denoisers(pipe):
            blocks = [b for stack in family_for(module).block_stacks for b in getattr(module, stack)]
            self.blocks_per_call = max(self.blocks_per_call, len(blocks))
            self._handles.append(module.register_forward_pre_hook(self._call))
            for block in blocks:
                leaf = next(m for m in block.modules() if m is not block and list(m.parameters(recurse=False)))
                self._handles.append(leaf.register_forward_hook(self._hit))

    def _call(self, *_: Any) -> None:
        self.calls.append(0)

    def _hit(self, *_: Any) -> None:
        self.calls[-1] += 1

    def reset(self) -> None:
        self.calls = []

    def nfe(self, steps: int = STEPS) -> float:
        """Real passes per step-branch: full block-stack passes divided by transformer calls per step."""
        full = sum(1 for c in self.calls if c == self.blocks_per_call)
        per_step = len(self.calls) / steps
        return full / per_step if per_step else 0.0

    def block_passes(self, steps: int = STEPS) -> float:
        """Block-stack passes counting partial ones pro rata (First Block Cache's first block)."""
        per_step = len(self.calls) / steps
        return sum(self.calls) / self.blocks_per_call / per_step if per_step else 0.0

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclass
class Applied:
    """A method applied to a pipeline: how to remove it, and the NFE it says it made (ours only)."""

    remove: Callable[[], None]
    reported_nfe: Callable[[], int | None] = lambda: None


@dataclass
class Method:
    """One accelerator at one budget. ``apply(pipe)`` returns an ``Applied``."""

    name: str                       # e.g. "spectrum w=1"
    group: str                      # "spectrum" | "taylorseer" | "diffusers"
    budget: int                     # the NFE it is matched to (14 or 10 of 50)
    settings: dict[str, Any]
    apply: Callable[[Any], Applied]
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.name} @{self.budget}"


def _ours(config: SpectrumConfig) -> Callable[[Any], Applied]:
    def apply(pipe: Any) -> Applied:
        handle = apply_spectrum(pipe, config)
        return Applied(handle.remove, lambda: handle.stats.nfe if handle.stats else None)

    return apply


CALIBRATED = "spectrum calibrated (default)"


def calibrated_default(model_name: str, steps: int, budget: int) -> tuple[SpectrumConfig, str]:
    """What `spectrum gen -m MODEL --steps S --nfe K` runs: the preset's config resolved against the
    profiles that ship with the package (a user's own profiles are left out, so results reproduce), and
    the profile's id ("reference" when none matches)."""
    from ..app import profiles

    return profiles.profiled_config(model_name, steps=steps, search=profiles.shipped_dirs(), nfe=budget,
                                    forecaster="chebyshev")


def our_methods(pipe: Any, budget: int, model_name: str | None = None) -> list[Method]:
    """Spectrum and the same-schedule baselines, TaylorSeer on its own uniform schedule, and (for a model
    with a shipped calibration profile at this budget) the calibrated default."""
    lo, hi = nfe_bounds(pipe, STEPS)
    nfe = max(lo, min(budget, hi))  # Wan2.2's two warm-ups need at least 12
    note = "" if nfe == budget else f"budget raised to {nfe}: the floor with two experts' warm-ups"
    spectrum = {
        "spectrum w=1": SpectrumConfig(nfe=nfe, blend=1.0),
        "spectrum w=0.5": SpectrumConfig(nfe=nfe, blend=0.5),
        "taylor o1 (spectrum schedule)": SpectrumConfig(forecaster="taylor", nfe=nfe, taylor_order=1),
        "taylor o2 (spectrum schedule)": SpectrumConfig(forecaster="taylor", nfe=nfe, taylor_order=2),
        "reuse (spectrum schedule)": SpectrumConfig(forecaster="reuse", nfe=nfe),
    }
    out = [Method(name, "spectrum", budget, cfg.to_dict(), _ours(cfg), note) for name, cfg in spectrum.items()]
    if model_name is not None:
        from ..app import profiles

        cfg, ident = calibrated_default(model_name, STEPS, budget)
        if ident != profiles.REFERENCE:
            out.insert(0, Method(CALIBRATED, "spectrum", budget, {**cfg.to_dict(), "profile": ident}, _ours(cfg)))
    interval = TAYLORSEER_INTERVAL.get(budget)
    if interval is not None:
        plans = plan_segments(expert_lengths(pipe, STEPS), warmup=3, window=2.0, alpha=None, nfe=None,
                              force_last=False, interval=interval)
        planned = sum(len(plan.steps) for plan in plans)
        note = "" if planned == budget else f"budget raised to {planned}: each expert restarts the 3-step warm-up"
        for order in (1, 2):
            cfg = SpectrumConfig(forecaster="taylor", interval=interval, warmup=3, taylor_order=order)
            out.append(Method(f"TaylorSeer N={interval} O={order}", "taylorseer", budget, cfg.to_dict(), _ours(cfg),
                              note))
    return out


# --- diffusers' caches ---------------------------------------------------------------------------------


def _enable(config_factory: Callable[[], Any]) -> Callable[[Any], Applied]:
    def apply(pipe: Any) -> Applied:
        modules = _denoisers(pipe)
        for module in modules:
            module.enable_cache(config_factory())

        def remove() -> None:
            for module in modules:
                module.disable_cache()

        return Applied(remove)

    return apply


def _taylorseer_schedule_nfe(before: int, interval: int, steps: int = STEPS) -> int:
    """diffusers' TaylorSeerCacheHook rule: compute while step < before, then when (step-before-1) % N == 0."""
    return sum(1 for s in range(steps) if s < before or (s - before - 1) % interval == 0)


def _taylorseer_knobs(budget: int) -> tuple[int, int]:
    """(disable_cache_before_step, cache_interval) whose schedule has the NFE nearest ``budget``; warm-up 3
    (TaylorSeer's) preferred among equals. Only a starting point: the runs count what really happened."""
    candidates = [(b, n) for b in range(1, 8) for n in range(2, 13)]
    return min(candidates, key=lambda bn: (abs(_taylorseer_schedule_nfe(*bn) - budget), abs(bn[0] - 3), bn[1]))


def _count_run(pipe: Any, run: Callable[[], Any], apply: Callable[[Any], Applied]) -> float:
    counter = PassCounter(pipe)
    applied = apply(pipe)
    try:
        run()
    finally:
        applied.remove()
        counter.close()
    return counter.nfe()


def _bisect_threshold(pipe: Any, run: Callable[[], Any], make: Callable[[float], Callable[[Any], Any]],
                      budget: int, lo: float, hi: float, probes: int) -> tuple[float, float, list]:
    """Geometric bisection of a threshold (higher -> fewer passes) for the NFE nearest ``budget``."""
    tried = []
    best = None
    for _ in range(probes):
        mid = (lo * hi) ** 0.5
        nfe = _count_run(pipe, run, make(mid))
        tried.append((mid, nfe))
        if best is None or abs(nfe - budget) < abs(best[1] - budget):
            best = (mid, nfe)
        if nfe == budget:
            break
        if nfe > budget:
            lo = mid
        else:
            hi = mid
    return best[0], best[1], tried


def _mag_ratios(pipe: Any, run: Callable[[], Any]) -> list[float]:
    """MagCache's own calibration run (no skipping); it prints the ratios, which we read back."""
    from diffusers import MagCacheConfig

    buffer = io.StringIO()
    applied = _enable(lambda: MagCacheConfig(calibrate=True, num_inference_steps=STEPS))(pipe)
    try:
        with contextlib.redirect_stdout(buffer):
            run()
    finally:
        applied.remove()
    lines = [line for line in buffer.getvalue().splitlines() if line.strip().startswith("[")]
    if not lines:
        raise RuntimeError("MagCache calibration printed no ratios")
    return [float(x) for x in ast.literal_eval(lines[-1].strip())]


def diffusers_methods(pipe: Any, budget: int, tune_run: Callable[[], Any], quick: bool,
                      log: Callable[[str], None] = lambda _: None) -> tuple[list[Method], dict[str, str]]:
    """diffusers' caches tuned to ``budget`` on ``tune_run`` (a held-out prompt/seed). Returns the methods
    and, for caches that do not apply to this model, the reason."""
    from diffusers import FirstBlockCacheConfig, MagCacheConfig, TaylorSeerCacheConfig

    methods: list[Method] = []
    skipped: dict[str, str] = {}
    probes = 6 if quick else 9

    before, interval = _taylorseer_knobs(budget)
    for order in (1, 2):
        name = f"diffusers TaylorSeerCache lite O={order}"
        settings = dict(cache_interval=interval, disable_cache_before_step=before, max_order=order,
                        use_lite_mode=True, taylor_factors_dtype="float32")

        def factory(order=order):
            return TaylorSeerCacheConfig(cache_interval=interval, disable_cache_before_step=before, max_order=order,
                                         use_lite_mode=True, taylor_factors_dtype=torch.float32)

        try:
            tuned = _count_run(pipe, tune_run, _enable(factory))
        except Exception as exc:  # the cache does not support this model
            skipped[name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        methods.append(Method(name, "diffusers", budget, {**settings, "tuning_nfe": tuned}, _enable(factory)))

    name = "diffusers FirstBlockCache"
    try:
        threshold, tuned, tried = _bisect_threshold(
            pipe, tune_run, lambda t: _enable(lambda: FirstBlockCacheConfig(threshold=t)), budget, 1e-4, 4.0, probes)
        methods.append(Method(name, "diffusers", budget, {"threshold": threshold, "tuning_nfe": tuned},
                              _enable(lambda t=threshold: FirstBlockCacheConfig(threshold=t)),
                              note="adaptive: NFE varies per sample"))
        log(f"    {name} @{budget}: threshold {threshold:.4g} -> {tuned:g} real passes on the tuning sample")
    except Exception as exc:
        skipped[name] = f"{type(exc).__name__}: {exc}"[:200]

    name = "diffusers MagCache"
    try:
        ratios = _mag_ratios(pipe, tune_run)
        # retention 0.1 = 5 warm-up steps like Spectrum's; the default max_skip_steps=3 and retention 0.2
        # cannot go below 20 of 50 passes, so both are loosened to reach the budget.
        knobs = dict(retention_ratio=0.1, max_skip_steps=12, num_inference_steps=STEPS)

        def mag(t: float, ratios=ratios):
            return _enable(lambda: MagCacheConfig(threshold=t, mag_ratios=list(ratios), **knobs))

        threshold, tuned, tried = _bisect_threshold(pipe, tune_run, mag, budget, 1e-4, 10.0, probes)
        methods.append(Method(name, "diffusers", budget, {"threshold": threshold, **knobs, "tuning_nfe": tuned,
                                                           "calibrated_on": "the tuning sample"},
                              mag(threshold), note="adaptive: NFE varies per sample"))
        log(f"    {name} @{budget}: threshold {threshold:.4g} -> {tuned:g} real passes on the tuning sample")
    except Exception as exc:
        skipped[name] = f"{type(exc).__name__}: {exc}"[:200]
    return methods, skipped
