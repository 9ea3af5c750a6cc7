"""Where to put K real passes: an exact optimiser over a calibrated, additive cost (docs/method.md#calibrated-schedules).

The objective. A segment has ``n`` steps; a schedule S is a set of real steps with 0 in S and |S| = K. Every
other step s is forecast, and what a forecast costs depends on the last two real steps before it, a < b
(a = "none" when b is the only real step so far, and the forecast is a reuse of b):

    J(S) = Σ_{s ∉ S} w_s · e(s | a(s), b(s))

``w_s`` is how much an error at step s is worth in the output (calibration measures it: the sampler's dσ² at
that step plus the measured amplification of a perturbation there) and ``e(s | a, b)`` the teacher-forced
error of forecasting step s from the true features at a and b. Because each term depends only on the pair
of real steps around it, J is a sum over consecutive pairs of the schedule, and dynamic programming over
states (a, b) = the last two real steps finds the exact minimum in O(K·n³) time: 50 steps, 14 passes is
~2M additions.

The additive objective is a proxy: it scores each forecast from true features, while a real run forecasts
from features that earlier forecasts already moved. ``refine_schedule`` therefore polishes the optimum
against the real thing — any score of a whole schedule (calibration passes closed-loop PSNR over held-out
samples) — by moving one real step at a time.

Several segments (Wan2.2's two experts, each starting real) are solved one by one for every budget and
combined by an exact knapsack over the split of K.

The functions take the costs as a tensor ``cost[a + 1, b, s]`` (index 0 on the first axis is "no a"); only
entries with a < b < s are read. Pure torch; nothing here knows about models.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ScheduleChoice", "gap_costs", "best_schedule", "best_schedules_by_budget", "best_segment_split",
           "objective", "Refinement", "refine_schedule", "MOVES"]

_INF = float("inf")


@dataclass(frozen=True)
class ScheduleChoice:
    """One segment's optimal real steps for a budget and the objective they reach."""

    steps: tuple[int, ...]
    cost: float


def _check(cost: torch.Tensor, weights: torch.Tensor) -> int:
    n = weights.shape[0]
    if cost.shape != (n + 1, n, n):
        raise ValueError(f"cost must have shape (n + 1, n, n) = {(n + 1, n, n)} for {n} steps, got {tuple(cost.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("weights must be finite and >= 0")
    return n


def gap_costs(cost: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """G[a + 1, b, c] = Σ_{b < s < c} w_s · cost[a + 1, b, s] for c = b + 1 … n (c = n: to the segment's
    end), +inf where a >= b; shape (n + 1, n, n + 1), float64."""
    n = _check(cost, weights)
    terms = cost.to(torch.float64) * weights.to(torch.float64).view(1, 1, n)
    steps = torch.arange(n)
    # keep the terms with s > b, then prefix-sum over s: G[., b, c] = Σ_{s < c} terms[., b, s]·[s > b]
    mask = steps.view(1, 1, n) > steps.view(1, n, 1)
    terms = torch.where(mask, terms, torch.zeros((), dtype=torch.float64))
    prefix = torch.zeros((n + 1, n, n + 1), dtype=torch.float64)
    prefix[:, :, 1:] = torch.cumsum(terms, dim=2)
    valid_a = (torch.arange(n + 1).view(n + 1, 1) - 1) < steps.view(1, n)  # a < b (a = -1 always)
    valid_c = torch.arange(n + 1).view(1, n + 1) > steps.view(n, 1)  # c > b
    valid = valid_a.view(n + 1, n, 1) & valid_c.view(1, n, n + 1)
    return torch.where(valid, prefix, torch.full((), _INF, dtype=torch.float64))


def best_schedules_by_budget(cost: torch.Tensor, weights: torch.Tensor, budgets=None) -> dict[int, ScheduleChoice]:
    """The optimal schedule of one segment for every budget K in ``budgets`` (default 1 … n)."""
    n = _check(cost, weights)
    wanted = sorted(set(range(1, n + 1) if budgets is None else (int(k) for k in budgets)))
    if not wanted or wanted[0] < 1 or wanted[-1] > n:
        raise ValueError(f"budgets must lie in 1 … {n} for a segment of {n} steps, got {wanted}")
    G = gap_costs(cost, weights)
    # f[a + 1, b]: the least cost of the forecast steps before b, with b the K-th real step and a the one before
    f = torch.full((n + 1, n), _INF, dtype=torch.float64)
    f[0, 0] = 0.0
    back: list[torch.Tensor] = []  # back[k][b, c]: the a + 1 that reached state (b + 1, c) with k + 2 passes
    out: dict[int, ScheduleChoice] = {}
    for k in range(1, wanted[-1] + 1):
        if k in wanted:
            total = f + G[:, :, n]
            best = int(torch.argmin(total))
            value = float(total.view(-1)[best])
            if value < _INF:
                out[k] = ScheduleChoice(_trace(best // n, best % n, back, k), value)
        if k == wanted[-1]:
            break
        candidates = f.unsqueeze(2) + G[:, :, :n]  # (a + 1, b, c)
        values, argmins = candidates.min(dim=0)      # (b, c)
        new = torch.full((n + 1, n), _INF, dtype=torch.float64)
        new[1:, :] = values
        f = new
        back.append(argmins)
    missing = [k for k in wanted if k not in out]
    if missing:
        raise ValueError(f"no schedule with {missing[0]} real steps in a segment of {n} steps")
    return {k: out[k] for k in wanted}


def _trace(a1: int, b: int, back: list[torch.Tensor], passes: int) -> tuple[int, ...]:
    """The real steps ending in state (a + 1 = a1, b) after ``passes`` real steps: back[k - 2][a, b] is the
    a + 1 of the state (a, b) came from, when it was reached with k passes."""
    steps = [b]
    while passes > 1:
        a = a1 - 1
        a1, b = int(back[passes - 2][a, b]), a
        steps.append(b)
        passes -= 1
    return tuple(reversed(steps))


def best_segment_split(per_segment: list[dict[int, ScheduleChoice]], budget: int) -> list[ScheduleChoice]:
    """The exact best split of ``budget`` real steps over segments, given each segment's optimum per budget."""
    best: dict[int, tuple[float, list[ScheduleChoice]]] = {0: (0.0, [])}
    for options in per_segment:
        nxt: dict[int, tuple[float, list[ScheduleChoice]]] = {}
        for used, (value, chosen) in best.items():
            for k, choice in options.items():
                total = used + k
                if total > budget:
                    continue
                candidate = value + choice.cost
                if total not in nxt or candidate < nxt[total][0]:
                    nxt[total] = (candidate, chosen + [choice])
        best = nxt
    if budget not in best:
        raise ValueError(f"no split of {budget} real steps over segments of the given budgets")
    return best[budget][1]


def best_schedule(costs: list[torch.Tensor], weights: list[torch.Tensor], budget: int) -> list[ScheduleChoice]:
    """The optimal real steps for ``budget`` passes over one or more segments (each with its own cost)."""
    if len(costs) != len(weights) or not costs:
        raise ValueError("give one cost tensor and one weight vector per segment")
    lengths = [w.shape[0] for w in weights]
    if not len(lengths) <= budget <= sum(lengths):
        raise ValueError(f"budget {budget} is not attainable over segments of {lengths} steps: choose "
                         f"{len(lengths)} to {sum(lengths)}")
    per_segment = []
    for cost, w in zip(costs, weights):
        n = w.shape[0]
        top = min(n, budget - (len(lengths) - 1))
        per_segment.append(best_schedules_by_budget(cost, w, range(1, top + 1)))
    return best_segment_split(per_segment, budget)


def objective(cost: torch.Tensor, weights: torch.Tensor, steps) -> float:
    """J(S) for one segment, summed directly (what the optimiser minimises; for tests and reports)."""
    n = _check(cost, weights)
    steps = sorted(int(s) for s in steps)
    if not steps or steps[0] != 0:
        raise ValueError("a schedule's first step must be 0")
    real = set(steps)
    total, a, b = 0.0, -1, 0
    for s in range(1, n):
        if s in real:
            a, b = b, s
            continue
        total += float(weights[s]) * float(cost[a + 1, b, s])
    return total


MOVES = (-2, -1, 1, 2)   # how far refine_schedule tries moving one real step


@dataclass(frozen=True)
class Refinement:
    """What ``refine_schedule`` found: the schedule, its score, the starting score and how many schedules it
    scored (the start included)."""

    steps: tuple[tuple[int, ...], ...]
    score: float
    start_score: float
    evaluations: int
    moves: tuple[tuple[int, int, int], ...]   # accepted moves: (segment, index in it, offset)


def refine_schedule(steps, lengths, score, *, sweeps: int = 2, moves=MOVES, min_gain: float = 0.0,
                    max_evaluations: int | None = None) -> Refinement:
    """Local search over real-step placements, maximising ``score``.

    ``steps`` holds one sorted tuple of real steps per segment (each starting at 0, which never moves),
    ``lengths`` the segments' step counts, and ``score(schedule) -> float`` rates a whole schedule (higher is
    better; it is called once per distinct schedule). Each sweep visits every movable real step in order
    and tries shifting it by each offset in ``moves`` (keeping the steps distinct, sorted and inside the
    segment); the first shift that beats the current score by more than ``min_gain`` is kept at once
    (first improvement) and the sweep goes on from the next step. It stops after ``sweeps`` sweeps, after a
    sweep that kept nothing, or once ``max_evaluations`` schedules were scored. The budget and the segment
    of every real step never change, so the result runs exactly the same number of real passes.
    """
    current = tuple(tuple(int(s) for s in seg) for seg in steps)
    if len(current) != len(lengths):
        raise ValueError(f"give one step list per segment: {len(current)} lists for {len(lengths)} segments")
    for seg, n in zip(current, lengths):
        if not seg or seg[0] != 0 or list(seg) != sorted(set(seg)) or seg[-1] >= n:
            raise ValueError(f"each segment's steps must start at 0, be sorted and distinct and lie below its "
                             f"length {n}: got {list(seg)}")
    seen: dict[tuple[tuple[int, ...], ...], float] = {}

    def rate(schedule):
        if schedule not in seen:
            seen[schedule] = float(score(schedule))
        return seen[schedule]

    start = best = rate(current)
    accepted: list[tuple[int, int, int]] = []
    for _ in range(max(0, int(sweeps))):
        kept = False
        for j, n in enumerate(lengths):
            for i in range(1, len(current[j])):
                for d in moves:
                    if max_evaluations is not None and len(seen) >= max_evaluations:
                        return Refinement(current, best, start, len(seen), tuple(accepted))
                    seg = list(current[j])
                    seg[i] += d
                    if seg[i] <= seg[i - 1] or seg[i] >= n or (i + 1 < len(seg) and seg[i] >= seg[i + 1]):
                        continue
                    candidate = current[:j] + (tuple(seg),) + current[j + 1:]
                    if candidate in seen:
                        continue
                    value = rate(candidate)
                    if value > best + min_gain:
                        current, best, kept = candidate, value, True
                        accepted.append((j, i, d))
                        break
        if not kept:
            break
    return Refinement(current, best, start, len(seen), tuple(accepted))
