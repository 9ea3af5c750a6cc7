"""Which denoising steps run the network: the Spectrum schedule as pure functions.

The rule is the reference implementation's (docs/method.md#the-schedule), kept to the letter so that step lists match
the paper's: the first ``warmup`` steps are real; after that a step is real when the count of forecast
steps since the last real one, plus one, is a multiple of ``floor(ws)``, where the window ``ws`` starts at
``window`` and grows by ``alpha`` at every real step after warm-up (rounded to 3 decimals). Gaps between
real passes grow linearly, so real passes are dense early and sparse late.

Besides the rule, a schedule can be data: ``explicit_segments`` checks an explicit list of real steps per
segment (what ``spectrum calibrate`` writes into a profile) against the run's segment lengths, and
``plan_config`` picks the schedule a ``SpectrumConfig`` asks for.

``solve_nfe`` inverts it: the schedule with exactly K real passes. It keeps the caller's warm-up and window
when they can reach K, and otherwise narrows the window (then lengthens the warm-up) until they can, so
every K from ``warmup + 1`` to the number of steps is attainable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "Schedule",
    "real_steps",
    "uniform_steps",
    "solve_nfe",
    "nfe_range",
    "segments_nfe_range",
    "plan_segments",
    "explicit_segments",
    "plan_config",
]

_ALPHA_RESOLUTION = 1000  # the reference rounds the window to 3 decimals, so alpha lives on a 0.001 grid


@dataclass(frozen=True)
class Schedule:
    """One segment's schedule: the parameters used and the real steps they give (0-based, local)."""

    num_steps: int
    warmup: int
    window: float
    alpha: float
    force_last: bool
    steps: tuple[int, ...]

    @property
    def nfe(self) -> int:
        return len(self.steps)


@lru_cache(maxsize=4096)
def _steps(num_steps: int, warmup: int, window: float, alpha: float, force_last: bool) -> tuple[int, ...]:
    count = consecutive = 0
    ws = window
    out = []
    for step in range(num_steps):
        real = True
        if count >= warmup:
            real = (consecutive + 1) % math.floor(ws) == 0
            if real:
                ws = round(ws + alpha, 3)
        count += 1
        consecutive = 0 if real else consecutive + 1
        if real:
            out.append(step)
    if force_last and num_steps and out[-1] != num_steps - 1:
        out.append(num_steps - 1)
    return tuple(out)


def uniform_steps(num_steps: int, warmup: int = 3, interval: int = 4, force_last: bool = False) -> list[int]:
    """TaylorSeer's schedule: ``warmup`` real steps, then one every ``interval`` steps after the last of them.

    >>> uniform_steps(50, warmup=3, interval=4)[:6]
    [0, 1, 2, 6, 10, 14]
    """
    if num_steps < 1 or warmup < 1 or interval < 1:
        raise ValueError(f"uniform schedule needs num_steps, warmup, interval >= 1, got {num_steps}, {warmup}, {interval}")
    steps = [s for s in range(num_steps) if s < warmup or (s - (warmup - 1)) % interval == 0]
    if force_last and steps[-1] != num_steps - 1:
        steps.append(num_steps - 1)
    return steps


def real_steps(
    num_steps: int, warmup: int = 5, window: float = 2.0, alpha: float = 0.75, force_last: bool = False
) -> list[int]:
    """The 0-based steps that run the network, by the reference rule.

    >>> real_steps(50, warmup=5, window=2, alpha=0.75)
    [0, 1, 2, 3, 4, 6, 8, 11, 15, 20, 25, 31, 38, 46]
    """
    _check(num_steps, warmup, window, alpha)
    return list(_steps(int(num_steps), int(warmup), float(window), float(alpha), bool(force_last)))


def _check(num_steps: int, warmup: int, window: float, alpha: float) -> None:
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if warmup < 1:
        raise ValueError(f"warmup must be >= 1 (the forecaster needs a real pass to start from), got {warmup}")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")


def nfe_range(num_steps: int, warmup: int = 5) -> tuple[int, int]:
    """The attainable numbers of real passes for a run of ``num_steps``: ``(warmup + 1, num_steps)``.

    With fewer than ``warmup + 1`` steps every step is a warm-up step, so the only attainable value is
    ``num_steps`` itself.
    """
    if num_steps <= warmup:
        return (num_steps, num_steps)
    return (warmup + 1, num_steps)


def segments_nfe_range(lengths: tuple[int, ...], warmup: int = 5) -> tuple[int, int]:
    """The attainable total of real passes over consecutive segments that each restart their warm-up."""
    return (sum(nfe_range(n, warmup)[0] for n in lengths), sum(lengths))


def _count(n: int, warmup: int, window: float, alpha_units: int, force_last: bool) -> int:
    return len(_steps(n, warmup, window, alpha_units / _ALPHA_RESOLUTION, force_last))


def _interval(count, k: int, top: int) -> tuple[int, int] | None:
    """The interval [lo, hi] of alpha (in 0.001 units, up to ``top``) where ``count(alpha) == k``, if any.

    Every gap floor(N + r*alpha) grows with alpha, so the count of real passes never increases with it and
    two bisections find the interval.
    """
    if not count(top) <= k <= count(0):
        return None
    lo, hi = 0, top  # first alpha with count <= k
    while lo < hi:
        mid = (lo + hi) // 2
        if count(mid) <= k:
            hi = mid
        else:
            lo = mid + 1
    if count(lo) != k:
        return None
    first, hi = lo, top  # last alpha with count >= k
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(mid) >= k:
            lo = mid
        else:
            hi = mid - 1
    return first, lo


@lru_cache(maxsize=1024)
def solve_nfe(
    num_steps: int, nfe: int, warmup: int = 5, window: float = 2.0, force_last: bool = False
) -> Schedule:
    """The schedule with exactly ``nfe`` real passes out of ``num_steps``.

    Among the alphas that give ``nfe`` passes it takes the middle of their interval, the choice farthest
    from a change of count; at 50 steps this reproduces the paper's anchors (nfe=14 -> the alpha=0.75
    steps, nfe=10 -> the alpha=3.0 steps). When the window cannot reach ``nfe`` (N=2 tops out at 27 of 50),
    narrower windows down to 1 are tried, then longer warm-ups.
    """
    lo, hi = nfe_range(num_steps, warmup)
    if not lo <= nfe <= hi:
        raise ValueError(
            f"nfe={nfe} is not attainable with {num_steps} steps and warmup={warmup}: choose {lo} to {hi}"
        )
    if num_steps <= warmup:
        return Schedule(num_steps, warmup, window, 0.0, force_last, tuple(range(num_steps)))
    windows = [float(window)] + [w / 100 for w in range(int(window * 100) - 1, 99, -1)]
    for w_up in range(warmup, nfe):
        for ws in windows:
            found = _interval(
                lambda units: _count(num_steps, w_up, ws, units, force_last), nfe, num_steps * _ALPHA_RESOLUTION
            )
            if found is not None:
                alpha = (found[0] + found[1]) // 2 / _ALPHA_RESOLUTION
                steps = _steps(num_steps, w_up, ws, alpha, force_last)
                return Schedule(num_steps, w_up, ws, alpha, force_last, steps)
    # Unreachable: warmup = nfe - 1 with a huge alpha gives warm-up steps plus one.
    raise AssertionError(f"no schedule with {nfe} real passes of {num_steps}")


def plan_segments(
    lengths: tuple[int, ...],
    *,
    warmup: int,
    window: float,
    alpha: float | None,
    nfe: int | None,
    force_last: bool,
    interval: int | None = None,
) -> list[Schedule]:
    """Schedules for consecutive segments of one run (one per expert, e.g. Wan2.2's two transformers).

    Each segment restarts with its own warm-up. With ``nfe`` the total over all segments is exactly ``nfe``:
    the one alpha (on the given window) that gives that total is used for every segment when it exists;
    otherwise the budget is split across segments in proportion to their length and each is solved alone.
    ``force_last`` applies to the run's last step, i.e. the last segment. With ``interval`` every
    segment follows TaylorSeer's uniform schedule instead (``uniform_steps``).
    """
    lengths = tuple(int(n) for n in lengths)
    last = len(lengths) - 1
    if interval is not None:
        return [
            Schedule(n, warmup, float(interval), 0.0, force_last and i == last, tuple(uniform_steps(n, warmup, interval, force_last and i == last)))
            for i, n in enumerate(lengths)
        ]
    if nfe is None:
        a = 0.75 if alpha is None else float(alpha)
        return [
            Schedule(n, warmup, window, a, force_last and i == last, tuple(real_steps(n, warmup, window, a, force_last and i == last)))
            for i, n in enumerate(lengths)
        ]
    if len(lengths) == 1:
        return [solve_nfe(lengths[0], int(nfe), warmup, float(window), force_last)]
    lo, hi = segments_nfe_range(lengths, warmup)
    if not lo <= nfe <= hi:
        raise ValueError(
            f"nfe={nfe} is not attainable with {hi} steps split {'+'.join(map(str, lengths))} across experts, "
            f"each with warmup={warmup}: choose {lo} to {hi}"
        )
    def total(units: int) -> int:
        return sum(_count(n, warmup, window, units, force_last and i == last) for i, n in enumerate(lengths))

    found = _interval(total, nfe, max(lengths) * _ALPHA_RESOLUTION)
    if found is not None:
        a = (found[0] + found[1]) // 2 / _ALPHA_RESOLUTION
        return [
            Schedule(n, warmup, window, a, force_last and i == last, _steps(n, warmup, window, a, force_last and i == last))
            for i, n in enumerate(lengths)
        ]
    budgets = _split_budget(lengths, nfe, warmup)
    return [
        solve_nfe(n, k, warmup, float(window), force_last and i == last)
        for i, (n, k) in enumerate(zip(lengths, budgets))
    ]


def _split_budget(lengths: tuple[int, ...], nfe: int, warmup: int) -> list[int]:
    floors = [nfe_range(n, warmup)[0] for n in lengths]
    extra = nfe - sum(floors)
    room = [n - f for n, f in zip(lengths, floors)]
    share = [min(r, extra * r // max(1, sum(room))) for r in room]
    left = extra - sum(share)
    for i in sorted(range(len(lengths)), key=lambda i: -room[i]):
        add = min(left, room[i] - share[i])
        share[i] += add
        left -= add
    return [f + s for f, s in zip(floors, share)]


def explicit_segments(
    lengths: tuple[int, ...], steps: tuple[tuple[int, ...], ...], nfe: int | None = None
) -> list[Schedule]:
    """Schedules from explicit real steps, one sorted list per segment (local, 0-based), checked against the
    run: one list per segment, every step inside its segment, step 0 of each segment real, and the total equal
    to ``nfe`` when given. ``warmup`` of each result is its leading run of consecutive real steps."""
    lengths = tuple(int(n) for n in lengths)
    if len(steps) != len(lengths):
        raise ValueError(
            f"real_steps has {len(steps)} segment(s) but this run has {len(lengths)} "
            f"({'+'.join(map(str, lengths))} steps{' across experts' if len(lengths) > 1 else ''})"
        )
    out = []
    for i, (n, segment) in enumerate(zip(lengths, steps)):
        segment = tuple(int(v) for v in segment)
        where = f"segment {i} " if len(lengths) > 1 else ""
        if not segment or segment[0] != 0:
            raise ValueError(f"real_steps {where}must start with step 0, got {list(segment)}")
        if any(b <= a for a, b in zip(segment, segment[1:])):
            raise ValueError(f"real_steps {where}must be sorted with no repeats, got {list(segment)}")
        if segment[-1] >= n:
            raise ValueError(
                f"real_steps {where}has step {segment[-1]} but the {'segment' if where else 'run'} has {n} steps "
                f"(0 to {n - 1}): the list was made for another step count"
            )
        lead = next((j for j, v in enumerate(segment) if v != j), len(segment))
        out.append(Schedule(n, lead, 0.0, 0.0, False, segment))
    total = sum(s.nfe for s in out)
    if nfe is not None and total != nfe:
        raise ValueError(f"real_steps lists {total} real steps but the budget nfe is {nfe}")
    return out


def plan_config(config, lengths: tuple[int, ...]) -> list[Schedule]:
    """The schedules a ``SpectrumConfig`` asks for over a run's segments: its explicit ``real_steps`` when
    set, else the reference rule (``alpha`` or ``nfe``) or TaylorSeer's uniform one (``interval``)."""
    if config.real_steps is not None:
        return explicit_segments(tuple(lengths), config.real_steps, config.nfe)
    return plan_segments(
        tuple(lengths),
        warmup=config.warmup,
        window=float(config.window),
        alpha=config.effective_alpha,
        nfe=config.nfe,
        force_last=config.force_last,
        interval=config.interval,
    )
