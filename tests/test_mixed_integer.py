"""The mixed-integer test problems MI1-MI4 and the multi-follower MF1: their stated optima verified independently
(by enumeration, by exact linear programmes, by the closed form), and solved to them.

The enumeration uses only the problems' own functions (``p.upper``, ``p.lower``), not their ``ll_response``: every
integer ``x`` of the box, for each every integer ``y`` (or, for MI4's continuous follower, the exact solution of its
linear programme), the follower's optimal answers, the optimistic choice among them, and the best ``F`` over the
leader's feasible choices.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

import evobilevel as eb

MI = ["MI1", "MI2", "MI3", "MI4"]


def _follower_answer(p, x: float) -> float | None:
    """The follower's optimal y at x (optimistic among ties), by enumeration or an exact LP; None if infeasible."""
    lo, hi = p.ll_bounds[0][0], p.ll_bounds[1][0]
    if p.ll_integrality[0]:
        Y = np.arange(lo, hi + 1.0)[:, None]
        X = np.full((Y.shape[0], 1), x)
        f, g = p.lower(X, Y)
        ok = (g <= 0).all(axis=1)
        if not ok.any():
            return None
        optimal = ok & (f == f[ok].min())
        F, _ = p.upper(X, Y)
        return float(Y[optimal][np.argmin(F[optimal]), 0])
    # A linear follower in one variable: f = c y, constraints a y <= b read from two evaluations.
    X2 = np.full((2, 1), x)
    f, g = p.lower(X2, np.array([[0.0], [1.0]]))
    c, a, b = f[1] - f[0], g[1] - g[0], -g[0]
    res = linprog([c], A_ub=a[:, None], b_ub=b, bounds=[(lo, hi)], method="highs")
    return float(res.x[0]) if res.status == 0 else None


@pytest.mark.parametrize("name", MI)
def test_stated_optimum_is_the_enumerated_one(name):
    p = eb.benchmarks.get(name)
    best = None
    for x in np.arange(p.ul_bounds[0][0], p.ul_bounds[1][0] + 1.0):
        y = _follower_answer(p, x)
        if y is None:
            continue
        F, G = p.upper(np.array([x]), np.array([y]))
        if (G <= 1e-9).all() and (best is None or F < best[2]):
            best = (x, y, F)
    assert best is not None
    x, y, F = best
    assert p.optimum.x.tolist() == [x] and p.optimum.y[0] == pytest.approx(y, abs=1e-9)
    assert p.optimum.F == pytest.approx(F, abs=1e-9)
    assert p.optimum.f == pytest.approx(p.lower(np.array([x]), np.array([y]))[0], abs=1e-9)


@pytest.mark.parametrize("name", MI)
def test_lower_level_response_agrees_with_the_enumeration(name):
    p = eb.benchmarks.get(name)
    X = np.arange(p.ul_bounds[0][0], p.ul_bounds[1][0] + 1.0)[:, None]
    Y = p.ll_response(X)[:, 0]
    for x, y in zip(X[:, 0], Y):
        expected = _follower_answer(p, x)
        assert (np.isnan(y) and expected is None) or y == pytest.approx(expected, abs=1e-9), x


def test_multi_follower_optimum_is_the_closed_form():
    p = eb.benchmarks.get("MF1")
    # Each follower's answer at random x, by a local solver on its own problem, against the closed form.
    rng = np.random.default_rng(0)
    for x in rng.uniform(p.ul_bounds[0], p.ul_bounds[1], size=(5, 2)):
        y = p.ll_response(x)
        for own, block in zip(p.follower_set.problems, p.follower_set.blocks):
            cons = [] if not own.n_ll_constraints else [
                {"type": "ineq", "fun": lambda v, own=own, x=x: -own.lower(x, v)[1]}]
            res = minimize(lambda v, own=own, x=x: own.lower(x, v)[0], np.zeros(own.ll_dim), method="SLSQP",
                           bounds=list(zip(*own.ll_bounds)), constraints=cons, options={"ftol": 1e-14})
            np.testing.assert_allclose(res.x, y[block], atol=1e-6)
    # The leader's problem with those answers: a dense grid finds nothing better than the stated optimum.
    grid = np.stack(np.meshgrid(np.linspace(0, 2, 201), np.linspace(-2, 2, 401)), axis=-1).reshape(-1, 2)
    F, _ = p.upper(grid, p.ll_response(grid))
    assert F.min() >= p.optimum.F - 1e-12 and p.optimum.F == -1.75 and p.optimum.f == 1.125
    np.testing.assert_array_equal(p.optimum.y, p.ll_response(p.optimum.x))


@pytest.mark.parametrize("name", MI)
def test_each_mixed_integer_problem_is_solved_in_at_least_10_of_11_runs(name):
    p = eb.benchmarks.get(name)
    runs = [eb.solve(p, seed=seed, target=1e-2, max_ul_evals=20_000, max_ll_evals=1_000_000) for seed in range(11)]
    assert sum(r.success for r in runs) >= 10
    for r in runs:
        assert r.x.tolist() == np.round(r.x).tolist()
        if p.ll_integrality.all():
            assert r.y.tolist() == np.round(r.y).tolist()
