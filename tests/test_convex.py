"""Convexity certificates: the test of a follower's problem as a convex quadratic programme in y, and what it saves
where a lower level is solved from scratch (the initial population's first members, the re-checks)."""

from __future__ import annotations

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ
from evobilevel.lower.convex import certify_convex, stencil

LO, HI = np.array([-10.0, 0.0, 1.0]), np.array([20.0, 1.0, 5.0])


def certify(objective, constraints=None):
    """(measured, convex) of certify_convex for one row whose follower has ``objective(P)`` (p,) and
    ``constraints(P)`` (p, m)."""
    P = stencil(LO, HI)
    G = np.zeros((P.shape[0], 0)) if constraints is None else constraints(P)
    measured, convex = certify_convex(objective(P)[None], G[None], LO, HI)
    return bool(measured[0]), bool(convex[0])


def test_the_stencil_is_the_centre_its_axes_their_pairs_and_two_far_points_inside_the_box():
    for d in (1, 2, 3, 10):
        lo, hi = -np.arange(1.0, d + 1), np.arange(1.0, d + 1) ** 2
        P = stencil(lo, hi)
        assert P.shape == ((d + 1) * (d + 2) // 2 + 2, d)
        assert (P >= lo).all() and (P <= hi).all()
        assert np.unique(P, axis=0).shape[0] == P.shape[0]
        np.testing.assert_allclose(P[0], 0.5 * (lo + hi))


def test_a_convex_quadratic_objective_with_linear_or_convex_constraints_is_certified():
    def objective(P):
        return (P[:, 0] - 3) ** 2 + 2 * (P[:, 1] + P[:, 2]) ** 2 + P[:, 2] ** 2 + P[:, 0] * P[:, 2] + 7 * P[:, 1]

    def constraints(P):
        return np.stack([P[:, 0] + 2 * P[:, 1] - 4, (P ** 2).sum(axis=1) - 30], axis=1)

    assert certify(objective) == (True, True)
    assert certify(objective, constraints) == (True, True)
    assert certify(lambda P: 5 * P[:, 0] - P[:, 2]) == (True, True)  # a linear programme
    assert certify(lambda P: 0 * P[:, 0] + 3.0) == (True, True)  # every point optimal


@pytest.mark.parametrize("objective, constraints", [
    (lambda P: P[:, 0] ** 2 - P[:, 1] ** 2, None),  # a saddle
    (lambda P: np.cos(P[:, 0]) + P[:, 1] ** 2, None),  # not a quadratic
    (lambda P: np.abs(P[:, 0] - 5) + P[:, 1] ** 2, None),  # a kink inside the box
    (lambda P: (P ** 2).sum(axis=1), lambda P: (30 - (P ** 2).sum(axis=1))[:, None]),  # outside a ball: not convex
    (lambda P: (P ** 2).sum(axis=1), lambda P: (P[:, 0] ** 3 - 8)[:, None]),  # a cube
])
def test_a_problem_that_is_not_a_convex_quadratic_programme_is_not_certified(objective, constraints):
    assert certify(objective, constraints) == (True, False)


def test_a_failed_evaluation_certifies_nothing():
    def objective(P):
        F = (P ** 2).sum(axis=1)
        F[3] = np.nan
        return F

    assert certify(objective) == (False, False)


@pytest.mark.parametrize("name, size", [("TP2", None), ("TP3", None), ("SMD6", (5, 5))])
def test_a_convex_follower_is_refined_where_it_was_searched_from_scratch(name, size):
    # TP2's and TP3's followers are convex quadratics under linear constraints, SMD6's a convex quadratic with a
    # line of optima: refinements from the test's points replace the initial population's searches from scratch
    # and the re-checks' (which, where the follower is free, still find its other optima for the leader's choice).
    p = eb.benchmarks.get(name) if size is None else eb.benchmarks.get(name, ul_dim=size[0], ll_dim=size[1])
    seeds = range(3)
    certified = [eb.solve(p, seed=seed, target=1e-2) for seed in seeds]
    searched = [eb.solve(p, algorithm=BLEAQ(certify_convex=False), seed=seed, target=1e-2) for seed in seeds]
    assert all(r.success for r in certified + searched)
    assert all(r.history[-1]["certified_convex"] >= 3 for r in certified)
    assert all(r.history[-1]["certified_convex"] == 0 for r in searched)
    assert sum(r.n_ll_evals for r in certified) < 0.8 * sum(r.n_ll_evals for r in searched)


@pytest.mark.parametrize("name, size, tested", [("SMD1", (5, 5), 23), ("SMD9", (5, 5), 23), ("TP7", None, 8)])
def test_a_follower_that_is_not_convex_costs_one_test_and_changes_nothing_else(name, size, tested):
    p = eb.benchmarks.get(name) if size is None else eb.benchmarks.get(name, ul_dim=size[0], ll_dim=size[1])
    run = eb.solve(p, seed=1, target=1e-2)
    alone = eb.solve(p, algorithm=BLEAQ(certify_convex=False), seed=1, target=1e-2)
    assert run.history[-1]["certified_convex"] == 0
    assert (run.n_ul_evals, run.F, run.f) == (alone.n_ul_evals, alone.F, alone.f)
    np.testing.assert_array_equal(run.y, alone.y)
    assert run.n_ll_evals == alone.n_ll_evals + tested
