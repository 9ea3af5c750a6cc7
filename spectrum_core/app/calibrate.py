"""Calibration: measure where a model needs its real passes, choose them exactly, and write a profile.

What it does (docs/method.md#calibrated-schedules), for one preset, step count and guidance:

1. **Trajectory.** One full-step run per trajectory sample, with a forward pre-hook on the output head
   recording its input (the guided block-stack output of every transformer call) to host memory as it is
   produced: the device never holds more than the current step's feature. From these, per CFG branch, the
   Gram matrix of the features gives the *teacher-forced* error of forecasting step s from the true
   features at real steps a < b, for every (a, b, s), in closed form: e(s | a, b) = ‖ĥ_s − h_s‖² / ‖h_s‖²
   with ĥ_s = h_b + min(k, 1)·(h_b − h_a), the capped linear forecaster (a reuse when b is the only real
   step).
2. **Amplification.** One more full run per probed step t, with every branch's block-stack output at t
   pushed by 1 % of its norm along its own one-step change (h_t − h_{t−1}): the relative change of the
   final latent per unit of relative feature error is A_t. Errors in the first steps are amplified by
   orders of magnitude more than in the middle.
3. **Weights.** w_t = dσ_t² / mean(dσ²) + A_t² / mean(A²): the sampler's step size (a velocity error moves
   the latent by dσ times itself) plus the measured amplification, each normalised to mean 1.
4. **Schedule.** ``method.optimise.best_schedule`` picks, for each budget K, the K real steps (step 0 of
   each expert segment real) minimising Σ_{forecast s} w_s · e(s | a, b) exactly.
5. **Forecaster.** Each candidate forecaster runs closed-loop on that schedule on *selection* samples
   (other prompts and seeds than the trajectory's), scored by PSNR against the full-step output; the best
   mean wins. The reference (the preset's Spectrum at the same budget on the paper's schedule) runs on the
   same samples, and the profile records the gain over it.
6. **Refinement.** The objective of step 4 scores forecasts from *true* features; a real run forecasts from
   features earlier forecasts already moved, so its optimum is not quite the closed-loop one.
   ``method.optimise.refine_schedule`` moves one real step at a time by up to two steps, keeping a move
   when the chosen forecaster's mean PSNR over *refinement* samples (yet other prompts and seeds) rises by
   more than 0.1 dB, for up to two sweeps. The refined schedule is then checked on the selection samples,
   which it never saw, and kept only if it does at least as well there as the optimiser's. (In a one-off
   experiment on the video model at 10 of 50 this was worth +2.0 ± 1.4 dB on the benchmark's samples and
   +4.8 ± 0.9 on others; docs/method.md.)

Full mode records 3 trajectory samples (costs and weights averaged), chooses on 4 others and refines on 6
more. Cost: (1 + probed steps) full runs per trajectory sample, (candidates + 2) runs per selection sample and
budget, and for the refinement one run per refinement sample and per schedule tried (at most
sweeps × (K − 1) × 4 schedules per budget; 106 of the bound's 178 on the video model at 10 and 14 of 50)
plus one per selection sample.
``fast=True`` probes every third step (amplification interpolated in log space between probes), uses one
selection sample and two candidates and does not refine: a small fraction of the runs, with a noisier
choice.

Profiles are small JSON files read by ``app.profiles``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..hooks.families import expert_names, expert_segments, family_for, output_samples
from ..method.config import SpectrumConfig
from ..method.optimise import best_schedule
from . import metrics
from .presets import InputError, Preset
from .request import build_job

__all__ = [
    "CalibrationError",
    "CalibrationPlan",
    "Candidate",
    "CANDIDATES",
    "FAST_CANDIDATES",
    "plan_calibration",
    "calibrate",
    "default_prompts",
    "read_prompts",
    "Progress",
]

PERTURBATION = 0.01        # relative size of the one-step feature perturbation
FAST_PROBE_EVERY = 3       # fast mode: probe amplification on every third step
# Full mode: the costs and amplification are averaged over this many recorded trajectories, and the
# forecaster is chosen on this many other samples. One of each picked schedules that did not carry over to
# other prompts (per-sample PSNR on these models spreads over +-10 dB), so the full mode pays for several.
FULL_TRAJECTORIES = 3
FULL_SELECTION = 4
FULL_REFINEMENT = 6        # samples the closed-loop refinement scores schedules on
REFINE_SWEEPS = 2          # full mode's refinement sweeps (each visits every real step once)
REFINE_MIN_GAIN = 0.1      # dB a move must add to the refinement samples' mean PSNR to be kept
CALIBRATION_SEED = 15_000  # seeds of calibration samples: far from the bench's (0, 1, 1000) and the CLI's 42


class CalibrationError(InputError):
    """Bad calibration input (budgets, steps, prompts); `field` names the setting at fault."""


@dataclass(frozen=True)
class Candidate:
    """A forecaster calibration may choose: a name and the SpectrumConfig fields it sets."""

    name: str
    settings: dict[str, Any]


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("chebyshev w=0.5", {"forecaster": "chebyshev", "blend": 0.5, "linear_cap": None}),
    Candidate("chebyshev w=0.5, linear cap 1", {"forecaster": "chebyshev", "blend": 0.5, "linear_cap": 1.0}),
    Candidate("linear cap 1", {"forecaster": "linear", "linear_cap": 1.0}),
    Candidate("taylor o1", {"forecaster": "taylor", "taylor_order": 1}),
)
FAST_CANDIDATES: tuple[Candidate, ...] = CANDIDATES[:1] + CANDIDATES[2:3]


@dataclass(frozen=True)
class CalibrationPlan:
    """Everything a calibration will do, checked before any model loads."""

    preset: Preset
    budgets: tuple[int, ...]
    steps: int
    guidance: float | None
    trajectory: tuple[tuple[str, int], ...]   # (prompt, seed) of the recorded full runs
    selection: tuple[tuple[str, int], ...]    # (prompt, seed) that choose the forecaster
    fast: bool = False
    candidates: tuple[Candidate, ...] = CANDIDATES
    refinement: tuple[tuple[str, int], ...] = ()   # (prompt, seed) the schedule refinement scores on
    sweeps: int = 0                                 # refinement sweeps (0: no refinement)

    @property
    def refines(self) -> bool:
        return self.sweeps > 0 and bool(self.refinement)

    @property
    def probes(self) -> list[int]:
        """The steps whose amplification is measured (the last step always)."""
        if not self.fast:
            return list(range(self.steps))
        return sorted(set(range(0, self.steps, FAST_PROBE_EVERY)) | {self.steps - 1})

    @property
    def runs(self) -> int:
        """Pipeline calls the calibration will make at most (the refinement stops early when no move helps)."""
        per_trajectory = 1 + len(self.probes)
        per_selection = 1 + len(self.budgets) * (1 + len(self.candidates))
        total = len(self.trajectory) * per_trajectory + len(self.selection) * per_selection
        if self.refines:
            from ..method.optimise import MOVES

            movable = sum(max(0, k - 1) for k in self.budgets)
            total += len(self.refinement) * (1 + len(self.budgets) + self.sweeps * len(MOVES) * movable)
            total += len(self.selection) * len(self.budgets)
        return total

    def describe(self) -> str:
        mode = ("fast: amplification probed every third step, one selection sample, "
                f"{len(self.candidates)} candidate forecasters, no refinement — a noisier choice for a fraction "
                "of the runs" if self.fast else f"full: every step probed, {len(self.selection)} selection samples, "
                f"{len(self.candidates)} candidate forecasters")
        if self.refines:
            mode += f", {self.sweeps} refinement sweep(s) on {len(self.refinement)} samples"
        elif not self.fast:
            mode += ", no refinement"
        return (f"{self.preset.name}, {self.steps} steps, guidance {self.guidance}, budgets "
                f"{', '.join(map(str, self.budgets))}: at most {self.runs} pipeline runs ({mode})")


@dataclass
class Progress:
    """What ``calibrate`` reports as it goes: a stage, runs done of the total, and elapsed seconds."""

    stage: str
    done: int
    total: int
    seconds: float
    note: str = ""


def default_prompts(preset: Preset, n: int) -> list[str]:
    """``n`` calibration prompts. For a closed-vocabulary model, prompts of its grammar that none of the
    quality checks or benchmarks use (its ``eval_prompts`` are excluded); otherwise a fixed list of everyday
    scenes."""
    if preset.prompt_grammar is not None:
        from ..models import prompt_world

        world = prompt_world(preset.prompt_grammar)
        combos = world.all_combinations()
        held = set(world.eval_prompts(min(len(combos), 64)))
        pool = [p for p in (world.make_prompt(*c) for c in combos) if p not in held]
        rng = np.random.default_rng(CALIBRATION_SEED)
        order = rng.permutation(len(pool))
        return [pool[i] for i in order[:n]]
    generic = ["a lighthouse on a cliff at dusk", "a bowl of ramen on a wooden table, steam rising",
               "a red fox running through fresh snow", "a city street in the rain at night, neon signs",
               "a portrait of an old fisherman, soft window light", "a field of sunflowers under a blue sky"]
    return [generic[i % len(generic)] for i in range(n)]


def read_prompts(path: str | Path) -> list[str]:
    """Prompts from a text file, one a line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"cannot read the prompts file {str(path)!r}: {exc}", field="prompts",
                               value=str(path), expected="a readable UTF-8 text file, one prompt a line") from None
    prompts = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise CalibrationError(f"the prompts file {str(path)!r} has no prompt (one a line, # for comments)",
                               field="prompts", value=str(path), expected="at least two prompts")
    return prompts


def plan_calibration(preset: Preset, budgets: Sequence[int], *, steps: int | None = None,
                     guidance: float | None = None, prompts: Sequence[str] | None = None,
                     fast: bool = False, sweeps: int | None = None) -> CalibrationPlan:
    """Check a calibration request against ``preset`` before any model loads; raise CalibrationError (or
    the request's errors, with ``field``) naming what is wrong.

    ``sweeps``: refinement sweeps (default ``REFINE_SWEEPS``, 0 with ``fast``; 0 turns refinement off).
    Prompts beyond those that record and select refine (``FULL_REFINEMENT`` of them by default); a prompt
    file too short to leave any does without refinement."""
    if sweeps is None:
        sweeps = 0 if fast else REFINE_SWEEPS
    if isinstance(sweeps, bool) or not isinstance(sweeps, (int, np.integer)) or not 0 <= sweeps <= 10:
        raise CalibrationError(f"refinement sweeps must be a whole number from 0 to 10, got {sweeps!r}",
                               field="refine_sweeps", value=sweeps, expected="a whole number from 0 to 10")
    if isinstance(budgets, (str, bytes)) or not budgets:
        raise CalibrationError("give at least one budget (real passes), e.g. 10 and 14", field="nfe",
                               value=budgets, expected="whole numbers of real passes")
    probe = build_job(preset, prompts[0] if prompts else default_prompts(preset, 1)[0],
                      {"method": "none", "steps": steps, "guidance": guidance})
    steps = probe.steps
    if steps < 3:
        raise CalibrationError(f"steps {steps} leaves nothing to calibrate: use 3 or more", field="steps",
                               value=steps, expected="a whole number >= 3")
    experts = preset.experts
    clean: list[int] = []
    for k in budgets:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise CalibrationError(f"nfe must be whole numbers of real passes, got {k!r}", field="nfe", value=k,
                                   expected="whole numbers")
        if not max(2, experts) <= k < steps:
            raise CalibrationError(
                f"nfe {k} is outside what calibration can place in {steps} steps: choose {max(2, experts)} to "
                f"{steps - 1} (every step real needs no calibration)", field="nfe", value=k,
                expected=f"from {max(2, experts)} to {steps - 1}")
        if k not in clean:
            clean.append(int(k))
    n_traj, n_sel = (1, 1) if fast else (FULL_TRAJECTORIES, FULL_SELECTION)
    n_ref = FULL_REFINEMENT if sweeps else 0
    if prompts is None:
        prompts = default_prompts(preset, n_traj + n_sel + n_ref)
    prompts = [str(p) for p in prompts]
    if len(prompts) < n_traj + n_sel:  # a short prompt file: about a third record, the rest choose
        n_traj = max(1, min(n_traj, len(prompts) // 3))
    if len(prompts) < 2:
        raise CalibrationError("calibration needs at least two prompts: one to record the trajectory, others "
                               "(never used to place the steps) to choose the forecaster", field="prompts",
                               value=len(prompts), expected="two or more prompts")
    for p in prompts:  # each checked like a generation request (closed vocabularies, empty prompts)
        build_job(preset, p, {"method": "none", "steps": steps, "guidance": guidance})
    if len(prompts) < n_traj + n_sel:
        n_sel = len(prompts) - n_traj
    samples = [(p, CALIBRATION_SEED + i) for i, p in enumerate(prompts)]
    return CalibrationPlan(
        preset=preset, budgets=tuple(sorted(clean)), steps=steps, guidance=probe.guidance,
        trajectory=tuple(samples[:n_traj]), selection=tuple(samples[n_traj:n_traj + n_sel]), fast=fast,
        candidates=FAST_CANDIDATES if fast else CANDIDATES,
        refinement=tuple(samples[n_traj + n_sel:n_traj + n_sel + n_ref]) if sweeps else (), sweeps=int(sweeps),
    )


# --- Recording ------------------------------------------------------------------------------------------


class _HeadTap:
    """Forward pre-hooks on every expert's output head: record each call's block-stack output to host
    memory, or perturb it at one step (``perturb``: step -> per-branch direction tensors)."""

    def __init__(self, pipe: Any):
        self.features: list[torch.Tensor] = []   # one per transformer call, float32 on the CPU
        self.record = False
        self.perturb: dict[int, list[torch.Tensor]] = {}
        self.calls_per_step = 1
        self.calls = 0
        self._handles = []
        for name in expert_names(pipe):
            module = getattr(pipe, name)
            head = module.get_submodule(family_for(module).head)
            self._handles.append(head.register_forward_pre_hook(self._pre))

    def _pre(self, module: Any, args: tuple) -> tuple | None:
        call = self.calls
        self.calls += 1
        hidden = args[0]
        if self.record:
            self.features.append(hidden.detach().to(device="cpu", dtype=torch.float32).clone())
        step, branch = divmod(call, self.calls_per_step)
        if step in self.perturb:
            delta = self.perturb[step][branch].to(device=hidden.device, dtype=hidden.dtype)
            return (hidden + delta, *args[1:])
        return None

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclass
class _Trajectory:
    grams: list[torch.Tensor]         # per branch: (n, n) float64 Gram matrix of the features
    features: list[list[torch.Tensor]]  # per step, per branch, on the host
    latent: torch.Tensor              # the final latent of the full run
    dsigma: torch.Tensor              # (n,) the sampler's |dσ| per step
    segments: list[tuple[int, int]]   # expert segments [start, end)

    def deltas(self, t: int) -> list[torch.Tensor]:
        """Per branch: a push of 1 % of h_t's norm along its one-step change h_t − h_{t−1} (h_1 − h_0 at 0)."""
        out = []
        for branch, h in enumerate(self.features[t]):
            prev = self.features[t - 1][branch] if t > 0 else h
            change = h - prev if t > 0 else self.features[1][branch] - h
            out.append(change * (PERTURBATION * float(h.norm()) / max(float(change.norm()), 1e-30)))
        return out


def _sigmas(pipe: Any, n: int) -> torch.Tensor:
    sched = pipe.scheduler
    sigmas = getattr(sched, "sigmas", None)
    if sigmas is not None and len(sigmas) >= n + 1:
        s = torch.as_tensor(sigmas, dtype=torch.float64)[-(n + 1):] if len(sigmas) > n + 1 else torch.as_tensor(sigmas, dtype=torch.float64)
        return (s[:-1] - s[1:]).abs()
    t = torch.as_tensor(sched.timesteps, dtype=torch.float64)[-n:]
    t = torch.cat([t, torch.zeros(1, dtype=torch.float64)])
    return (t[:-1] - t[1:]).abs() / max(float(t.max()), 1e-12)


def _latent(result: Any) -> torch.Tensor:
    out = output_samples(result)
    return torch.as_tensor(np.asarray(out) if not isinstance(out, torch.Tensor) else out).detach().to(
        device="cpu", dtype=torch.float64)


def _decoded(result: Any) -> np.ndarray:
    out = output_samples(result)
    return np.clip(np.asarray(out[0], dtype=np.float32), 0.0, 1.0)


# --- Costs ----------------------------------------------------------------------------------------------


def forecast_costs(gram: torch.Tensor, cap: float = 1.0) -> torch.Tensor:
    """cost[a + 1, b, s] = ‖ĥ_s − h_s‖² / ‖h_s‖² for the capped linear forecast ĥ_s = h_b + min(k, cap)·(h_b − h_a),
    k = (s − b)/(b − a), and the reuse ĥ_s = h_b for a = none (index 0), from the features' Gram matrix
    ``gram[i, j] = ⟨h_i, h_j⟩``; entries without a < b < s are 0."""
    G = gram.to(torch.float64)
    n = G.shape[0]
    idx = torch.arange(n, dtype=torch.float64)
    d = torch.diagonal(G)
    # ‖h_b − h_s‖²[b, s] and ⟨h_b − h_s, h_b − h_a⟩[a, b, s]
    bs = d.view(n, 1) + d.view(1, n) - 2 * G
    # explicit broadcasting: cross[a, b, s] = G_bb − G_ba − G_sb + G_sa
    Gbb = d.view(1, n, 1)
    Gba = G.t().view(n, n, 1)            # [a, b] -> G[b, a]
    Gsb = G.t().view(1, n, n)            # [b, s] -> G[s, b]
    Gsa = G.view(n, 1, n)                # [a, s] -> G[a, s] = G[s, a]
    cross = Gbb - Gba - Gsb + Gsa
    ba = (d.view(n, 1) + d.view(1, n) - 2 * G).view(n, n, 1)   # ‖h_b − h_a‖² [a, b]
    a_ = idx.view(n, 1, 1)
    b_ = idx.view(1, n, 1)
    s_ = idx.view(1, 1, n)
    k = ((s_ - b_) / (b_ - a_).clamp(min=1)).clamp(max=cap)
    lin = bs.view(1, n, n) + 2 * k * cross + k * k * ba
    valid = (a_ < b_) & (b_ < s_)
    lin = torch.where(valid, lin, torch.zeros((), dtype=torch.float64)).clamp(min=0)
    reuse = torch.where(idx.view(n, 1) < idx.view(1, n), bs, torch.zeros((), dtype=torch.float64)).clamp(min=0)
    out = torch.cat([reuse.view(1, n, n), lin], dim=0)
    return out / d.clamp(min=1e-30).view(1, 1, n)


def step_weights(dsigma: torch.Tensor, amplification: torch.Tensor) -> torch.Tensor:
    """w_t = dσ_t²/mean(dσ²) + A_t²/mean(A²) (each part mean 1; a part that is all zero is dropped)."""
    parts = []
    for part in (dsigma.to(torch.float64) ** 2, amplification.to(torch.float64) ** 2):
        mean = float(part.mean())
        parts.append(part / mean if mean > 0 and math.isfinite(mean) else torch.zeros_like(part))
    return parts[0] + parts[1]


def _interpolate_log(probes: list[int], values: list[float], n: int) -> torch.Tensor:
    logs = np.log(np.maximum(np.asarray(values, dtype=np.float64), 1e-30))
    return torch.as_tensor(np.exp(np.interp(np.arange(n), probes, logs)), dtype=torch.float64)


# --- The calibration ------------------------------------------------------------------------------------


def calibrate(plan: CalibrationPlan, pipe: Any, *, progress: Callable[[Progress], None] = lambda _: None,
              call_kwargs: Callable[[str, int], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run ``plan`` on the loaded ``pipe``; the profile as a JSON-ready dict (``app.profiles`` writes and
    reads it). ``call_kwargs(prompt, seed)`` builds a pipeline call (default: the preset's, as `gen` makes
    it); ``progress`` gets a ``Progress`` after every run."""
    from ..hooks.spectrum import apply_spectrum
    from .runner import Runner, torch_threads

    preset = plan.preset
    started = time.perf_counter()
    done = 0
    runner = Runner(preset, device="cpu")
    if call_kwargs is None:
        def call_kwargs(prompt: str, seed: int) -> dict[str, Any]:
            job = build_job(preset, prompt, {"method": "none", "seed": seed, "steps": plan.steps,
                                              "guidance": plan.guidance})
            device = getattr(pipe, "device", torch.device("cpu"))
            gen_device = "cpu" if getattr(device, "type", "cpu") == "mps" else device
            return runner.call_kwargs(job, torch.Generator(gen_device).manual_seed(seed))

    def run(prompt: str, seed: int, output_type: str) -> Any:
        nonlocal done
        kwargs = call_kwargs(prompt, seed)
        kwargs["output_type"] = output_type
        tap.calls = 0
        with torch.no_grad():
            result = pipe(**kwargs)
        done += 1
        return result

    def report(stage: str, note: str = "") -> None:
        progress(Progress(stage, done, plan.runs, time.perf_counter() - started, note))

    references: dict[tuple[str, int], np.ndarray] = {}

    def closed_loop(cfg: SpectrumConfig, k: int, prompt: str, seed: int, reference: np.ndarray, name: str) -> float:
        """PSNR (capped at 100 dB; -inf when not finite) of one Spectrum run of ``cfg`` against ``reference``."""
        with apply_spectrum(pipe, cfg) as handle:
            out = _decoded(run(prompt, seed, "np"))
            nfe = handle.stats.nfe
        if nfe != k:
            raise RuntimeError(f"{name} at budget {k} made {nfe} real passes")
        value = metrics.psnr(out, reference) if np.isfinite(out).all() else -math.inf
        return min(value, 100.0)

    n = plan.steps
    tap = _HeadTap(pipe)
    threads = runner.threads if runner.threads else 0
    try:
        with torch_threads(threads):
            costs_sum: list[torch.Tensor] | None = None
            weights_sum: list[torch.Tensor] | None = None
            amp_record: list[list[float]] = []
            segments: list[tuple[int, int]] = []
            for prompt, seed in plan.trajectory:
                traj = _record(tap, pipe, run, prompt, seed, n)
                report("trajectory", f"{prompt!r} seed {seed}")
                segments = traj.segments
                amps = []
                for t in plan.probes:
                    tap.perturb = {t: traj.deltas(t)}
                    try:
                        latent = _latent(run(prompt, seed, "latent"))
                    finally:
                        tap.perturb = {}
                    change = float((latent - traj.latent).norm() / traj.latent.norm().clamp(min=1e-30))
                    amps.append(max(change / PERTURBATION, 1e-30))
                    report("amplification", f"step {t}")
                amplification = _interpolate_log(plan.probes, amps, n)
                amp_record.append(amplification.tolist())
                weights = step_weights(traj.dsigma, amplification)
                per_branch = [forecast_costs(g) for g in traj.grams]
                cost = torch.stack(per_branch).mean(dim=0)
                seg_costs = [_segment(cost, a, b) for a, b in segments]
                seg_weights = [weights[a:b] for a, b in segments]
                if costs_sum is None:
                    costs_sum, weights_sum = seg_costs, seg_weights
                else:
                    costs_sum = [x + y for x, y in zip(costs_sum, seg_costs)]
                    weights_sum = [x + y for x, y in zip(weights_sum, seg_weights)]
            schedules = {}
            objective = {}
            for k in plan.budgets:
                picked = best_schedule(costs_sum, weights_sum, k)
                schedules[k] = [list(c.steps) for c in picked]
                objective[k] = sum(c.cost for c in picked) / len(plan.trajectory)

            # closed loop on the selection samples
            base = preset.spectrum.config
            scores: dict[int, dict[str, list[float]]] = {k: {} for k in plan.budgets}
            for prompt, seed in plan.selection:
                reference = _decoded(run(prompt, seed, "np"))
                references[(prompt, seed)] = reference
                report("selection", f"full-step output of {prompt!r} seed {seed}")
                for k in plan.budgets:
                    # the reference at this budget (its warm-up shortened when the budget cannot hold it)
                    warmup = min(base.warmup, max(1, k // max(1, len(segments)) - 1))
                    configs = {"reference": base.replace(nfe=k, forecaster="chebyshev", warmup=warmup)}
                    for cand in plan.candidates:
                        configs[cand.name] = _candidate_config(base, cand, schedules[k], k)
                    for name, cfg in configs.items():
                        value = closed_loop(cfg, k, prompt, seed, reference, name)
                        scores[k].setdefault(name, []).append(value)
                        report("selection", f"{name} @{k}: {value:.2f} dB")

            chosen = {}
            for k in plan.budgets:
                means = {name: float(np.mean(v)) for name, v in scores[k].items()}
                chosen[k] = (max(plan.candidates, key=lambda c: means[c.name]), means)
            refined: dict[int, tuple[dict[str, Any], float]] = {}
            if plan.refines:
                refined = _refine(plan, base, schedules, chosen, segments, closed_loop, run, references, report)
    finally:
        tap.close()

    budgets = {}
    for k in plan.budgets:
        best, means = chosen[k]
        steps_k = schedules[k]
        psnr = means[best.name]
        extra = {}
        if k in refined:
            record, selection_psnr = refined[k]
            extra = {"refinement": record}
            if record["kept"]:
                steps_k, psnr = record["refined_steps"], selection_psnr
        cfg = _candidate_config(base, best, steps_k, k)
        budgets[str(k)] = {
            "real_steps": steps_k,
            "forecaster": best.name,
            "config": {key: cfg.to_dict()[key] for key in ("forecaster", "blend", "linear_cap", "taylor_order",
                                                           "degree", "ridge", "tau_horizon")},
            "psnr": psnr,
            "reference_psnr": means["reference"],
            "gain_db": psnr - means["reference"],
            "candidates_psnr": {name: round(v, 3) for name, v in means.items()},
            "objective": objective[k],
            **extra,
        }
    seconds = time.perf_counter() - started
    return {
        "calibration": {
            "trajectory": [{"prompt": p, "seed": s} for p, s in plan.trajectory],
            "selection": [{"prompt": p, "seed": s} for p, s in plan.selection],
            "refinement": [{"prompt": p, "seed": s} for p, s in plan.refinement] if plan.refines else [],
            "refine_sweeps": plan.sweeps if plan.refines else 0,
            "mode": "fast" if plan.fast else "full",
            "probes": plan.probes,
            "objective": "sum over forecast steps s of w_s * e(s | last two real steps), "
                         "w = dsigma^2/mean + A^2/mean, e = capped-linear teacher-forced relative error",
            "amplification": [[round(a, 6) for a in amps] for amps in amp_record],
            "segments": [list(s) for s in segments],
            "runs": done,
            "seconds": round(seconds, 2),
        },
        "budgets": budgets,
    }


def _segment(cost: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """A segment's cost tensor in local indices: rows a' ∈ {none} ∪ [a, b), b and s in [a, b)."""
    rows = torch.cat([cost[:1], cost[1 + a:1 + b]], dim=0)
    return rows[:, a:b, a:b].contiguous()


def _candidate_config(base: SpectrumConfig, cand: Candidate, steps: list[list[int]], k: int) -> SpectrumConfig:
    return base.replace(real_steps=tuple(tuple(s) for s in steps), nfe=k, **cand.settings)


def _record(tap: _HeadTap, pipe: Any, run: Callable[..., Any], prompt: str, seed: int, n: int) -> _Trajectory:
    tap.features, tap.record = [], True
    try:
        result = run(prompt, seed, "latent")
    finally:
        tap.record = False
    calls = len(tap.features)
    if calls % n:
        raise RuntimeError(f"{type(pipe).__name__} made {calls} transformer calls in {n} steps: calibration "
                           "needs the same number of calls on every step")
    per_step = calls // n
    tap.calls_per_step = per_step
    features = [[tap.features[t * per_step + b] for b in range(per_step)] for t in range(n)]
    tap.features = []
    grams = []
    for branch in range(per_step):
        # one row of the Gram matrix at a time: no (n, F) float64 copy of the trajectory
        rows = [f[branch].reshape(-1).to(torch.float64) for f in features]
        gram = torch.empty((n, n), dtype=torch.float64)
        for i in range(n):
            for j in range(i + 1):
                gram[i, j] = gram[j, i] = torch.dot(rows[i], rows[j])
        grams.append(gram)
        del rows
    timesteps = pipe.scheduler.timesteps
    segs = expert_segments(pipe, timesteps[-n:], expert_names(pipe))
    return _Trajectory(grams, features, _latent(result), _sigmas(pipe, n), sorted(segs.values()))


def _refine(plan: CalibrationPlan, base: SpectrumConfig, schedules: dict[int, list[list[int]]],
            chosen: dict[int, tuple[Candidate, dict[str, float]]], segments: list[tuple[int, int]],
            closed_loop: Callable[..., float], run: Callable[..., Any],
            references: dict[tuple[str, int], np.ndarray],
            report: Callable[..., None]) -> dict[int, tuple[dict[str, Any], float]]:
    """Step 6 of the module docstring, per budget: the profile's record of it (optimiser and refined steps,
    whether the refined ones were kept) and the final schedule's mean PSNR on the selection samples."""
    from ..method.optimise import refine_schedule

    targets = {}
    for prompt, seed in plan.refinement:
        targets[(prompt, seed)] = _decoded(run(prompt, seed, "np"))
        report("refinement", f"full-step output of {prompt!r} seed {seed}")
    lengths = [b - a for a, b in segments]
    out: dict[int, dict[str, Any]] = {}
    for k in plan.budgets:
        best, means = chosen[k]

        def score(schedule, k=k, best=best) -> float:
            cfg = _candidate_config(base, best, [list(s) for s in schedule], k)
            values = [closed_loop(cfg, k, p, s, targets[(p, s)], best.name) for p, s in plan.refinement]
            mean = float(np.mean(values))
            report("refinement", f"@{k} {'/'.join(','.join(map(str, seg)) for seg in schedule)}: {mean:.2f} dB")
            return mean

        found = refine_schedule([tuple(s) for s in schedules[k]], lengths, score, sweeps=plan.sweeps,
                                min_gain=REFINE_MIN_GAIN)
        steps = [list(s) for s in found.steps]
        record: dict[str, Any] = {
            "optimiser_steps": schedules[k], "refined_steps": steps, "schedules_scored": found.evaluations,
            "refinement_psnr_before": round(found.start_score, 3), "refinement_psnr_after": round(found.score, 3),
            "moves": [list(m) for m in found.moves],
        }
        selection_psnr = means[best.name]
        kept = False
        if steps != schedules[k]:
            cfg = _candidate_config(base, best, steps, k)
            values = [closed_loop(cfg, k, p, s, references[(p, s)], best.name) for p, s in plan.selection]
            selection_psnr = float(np.mean(values))
            kept = selection_psnr >= means[best.name]
            report("refinement", f"@{k} check on the selection samples: {selection_psnr:.2f} dB vs "
                                 f"{means[best.name]:.2f} dB ({'kept' if kept else 'not kept'})")
            record["selection_psnr_before"] = round(means[best.name], 3)
            record["selection_psnr_after"] = round(selection_psnr, 3)
        record["kept"] = kept
        out[k] = (record, selection_psnr)
    return out
