"""The schedule optimiser is exact: it matches brute force over every schedule on small synthetic costs."""

import itertools

import pytest
import torch

from spectrum_core.method.optimise import MOVES, best_schedule, best_schedules_by_budget, objective, refine_schedule


def random_problem(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n + 1, n, n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64)


def brute(cost, weights, k):
    n = weights.shape[0]
    best = min(((0, *rest) for rest in itertools.combinations(range(1, n), k - 1)),
               key=lambda steps: objective(cost, weights, steps))
    return best, objective(cost, weights, best)


@pytest.mark.parametrize("n, seed", [(6, 0), (8, 1), (9, 2), (10, 3)])
def test_dynamic_programme_matches_brute_force(n, seed):
    cost, weights = random_problem(n, seed)
    found = best_schedules_by_budget(cost, weights)
    for k in range(1, n + 1):
        steps, value = brute(cost, weights, k)
        assert found[k].steps[0] == 0 and len(found[k].steps) == k
        assert found[k].cost == pytest.approx(value, rel=1e-12, abs=1e-12)
        assert objective(cost, weights, found[k].steps) == pytest.approx(found[k].cost, rel=1e-12, abs=1e-12)
    assert found[n].steps == tuple(range(n)) and found[n].cost == 0.0


def test_two_segments_split_the_budget_exactly():
    (c1, w1), (c2, w2) = random_problem(7, 4), random_problem(5, 5)
    for budget in range(2, 13):
        chosen = best_schedule([c1, c2], [w1, w2], budget)
        assert sum(len(c.steps) for c in chosen) == budget
        best = min(
            brute(c1, w1, k)[1] + brute(c2, w2, budget - k)[1]
            for k in range(max(1, budget - 5), min(7, budget - 1) + 1)
        )
        assert sum(c.cost for c in chosen) == pytest.approx(best, rel=1e-12)


def test_cheap_middle_and_costly_ends_put_passes_at_the_ends():
    # forecast cost grows with the distance to the last real step; weights high at both ends
    n = 20
    cost = torch.zeros(n + 1, n, n, dtype=torch.float64)
    for b in range(n):
        for s in range(b + 1, n):
            cost[:, b, s] = float(s - b) ** 2
    weights = torch.full((n,), 0.01, dtype=torch.float64)
    weights[:3] = weights[-3:] = 100.0
    (choice,) = best_schedule([cost], [weights], 7)
    assert set(choice.steps) >= {0, 1, 2, 17, 18, 19}


def test_bad_budgets_are_refused():
    cost, weights = random_problem(5, 0)
    with pytest.raises(ValueError, match="choose 1 to 5"):
        best_schedule([cost], [weights], 6)
    with pytest.raises(ValueError, match="shape"):
        best_schedule([cost[:, :, :4]], [weights], 3)


def _distance_score(target):
    """A score peaked at ``target`` (one tuple per segment): minus the summed distance of the real steps."""
    def score(schedule):
        return -sum(abs(a - b) for seg, goal in zip(schedule, target) for a, b in zip(seg, goal))
    return score


def test_refinement_walks_to_a_reachable_optimum_and_keeps_the_budget():
    calls = []
    target = ((0, 2, 5, 9, 11),)
    score = _distance_score(target)
    found = refine_schedule([(0, 4, 6, 8, 10)], [12], lambda s: calls.append(s) or score(s), sweeps=10)
    assert found.steps == target and found.score == 0 and found.start_score == score(((0, 4, 6, 8, 10),))
    assert len(calls) == len(set(calls)) == found.evaluations   # every schedule scored once
    assert all(len(s[0]) == 5 and s[0][0] == 0 and list(s[0]) == sorted(set(s[0])) and s[0][-1] < 12 for s in calls)
    assert all(abs(d) <= max(MOVES) for _, _, d in found.moves)


def test_refinement_moves_each_segment_within_itself():
    target = ((0, 3, 6), (0, 1, 7))
    found = refine_schedule([(0, 4, 5), (0, 2, 5)], [8, 9], _distance_score(target), sweeps=10)
    assert found.steps == target
    seen = []
    refine_schedule([(0, 4, 5), (0, 2, 5)], [8, 9], lambda s: seen.append(s) or 0.0, sweeps=1)
    assert all(seg_a[-1] < 8 and seg_b[-1] < 9 and seg_a[0] == seg_b[0] == 0 for seg_a, seg_b in seen)


def test_refinement_stops_on_no_gain_sweeps_and_evaluations():
    flat = refine_schedule([(0, 3, 6)], [10], lambda s: 1.0, sweeps=5)
    assert flat.steps == ((0, 3, 6),) and flat.moves == () and flat.score == flat.start_score == 1.0
    # a move gains at most 2 (two steps nearer), but must add more than 2: nothing is kept
    score = _distance_score(((0, 1, 9),))
    assert refine_schedule([(0, 3, 6)], [10], score, sweeps=5, min_gain=2.0).steps == ((0, 3, 6),)
    # two-step moves pass 1.5; the last one-step move (8 -> 9) does not
    assert refine_schedule([(0, 3, 6)], [10], score, sweeps=5, min_gain=1.5).steps == ((0, 1, 8),)
    assert refine_schedule([(0, 3, 6)], [10], score, sweeps=0).evaluations == 1
    assert refine_schedule([(0, 3, 6)], [10], score, sweeps=5, max_evaluations=3).evaluations == 3
    one = refine_schedule([(0, 3, 6)], [10], score, sweeps=1)   # one sweep: each step moves at most once
    assert len(one.moves) <= 2 and one.score > one.start_score


@pytest.mark.parametrize("steps, lengths", [([(1, 3)], [6]), ([(0, 3, 3)], [6]), ([(0, 6)], [6]),
                                            ([(0, 2)], [6, 6])])
def test_refinement_refuses_bad_schedules(steps, lengths):
    with pytest.raises(ValueError):
        refine_schedule(steps, lengths, lambda s: 0.0)
