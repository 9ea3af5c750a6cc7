"""The schedule optimiser is exact: it matches brute force over every schedule on small synthetic costs."""

import itertools

import pytest
import torch

from spectrum_core.method.optimise import best_schedule, best_schedules_by_budget, objective


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
