"""Infeasibility certificates for followers whose constraints are linear in y: the test of linearity, the least
violation's linear programme, and what they save in BLEAQ runs on the TP suite."""

from __future__ import annotations

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ
from evobilevel.algorithms.bleaq.settlement import LowerSettlement
from evobilevel.lower.linear import LINEAR_STEP, certify_infeasible, linearity_points

LO, HI = np.zeros(3), np.array([1.0, 2.0, 4.0])


def certify(constraints, Y):
    """certify_infeasible at the rows Y (n, 3) for ``constraints(P) -> G`` (k, m) on points P (k, 3)."""
    P, H = linearity_points(Y, LO, HI)
    G = constraints(P.reshape(-1, 3)).reshape(P.shape[0], P.shape[1], -1)
    return certify_infeasible(Y, H, G, LO, HI)


def test_the_points_are_the_row_its_forward_neighbours_and_two_far_points_of_the_box():
    Y = np.array([[0.2, 1.0, 4.0], [0.5, 1.0, 2.0]])
    P, H = linearity_points(Y, LO, HI)
    assert P.shape == (2, 6, 3) and H.shape == (2, 3)
    np.testing.assert_array_equal(P[:, 0], Y)
    # Steps of LINEAR_STEP of each range, turned back at the upper bound (the first row's third variable).
    np.testing.assert_allclose(H[0], LINEAR_STEP * np.array([1.0, 2.0, -4.0]))
    np.testing.assert_allclose(P[0, 1:4] - Y[0], np.diag(H[0]))
    np.testing.assert_array_equal(P[:, 4], [[0.5, 1.0, 2.0]] * 2)
    np.testing.assert_allclose(P[0, 5], [0.8, 1.0, 0.0])


def test_linear_constraints_that_no_point_of_the_box_meets_are_certified_infeasible():
    # y1 + y2 + y3 >= 8 in the box [0, 1] x [0, 2] x [0, 4] (at most 7), with a constraint that the box does meet.
    def constraints(P):
        return np.stack([8.0 - P.sum(axis=1), P[:, 0] - 0.5], axis=1)

    linear, infeasible = certify(constraints, np.array([[0.9, 1.9, 3.9], [0.1, 0.0, 0.0]]))
    assert linear.all() and infeasible.all()


def test_linear_constraints_met_elsewhere_in_the_box_are_not_certified():
    # Infeasible at both rows (y1 + y2 + y3 >= 6.5 and y1 <= 0.5 there), feasible at (0.5, 2, 4).
    def constraints(P):
        return np.stack([6.5 - P.sum(axis=1), P[:, 0] - 0.5], axis=1)

    linear, infeasible = certify(constraints, np.array([[0.9, 1.9, 3.9], [0.1, 0.0, 0.0]]))
    assert linear.all() and not infeasible.any()


@pytest.mark.parametrize("curved", [
    lambda P: 25.0 - (P ** 2).sum(axis=1),  # outside a ball that holds the box: infeasible, but not linear
    lambda P: np.floor((P ** 2).sum(axis=1) + 0.5) - (P ** 2).sum(axis=1),  # SMD9's rings
    lambda P: 50.0 - P[:, 0] - P[:, 1] ** 3 + 0 * P[:, 2],  # a cube the box cannot reach
])
def test_curved_constraints_fail_the_test_and_are_never_certified(curved):
    Y = np.array([[0.3, 0.7, 1.1], [0.9, 1.9, 3.9]])
    linear, infeasible = certify(lambda P: curved(P)[:, None], Y)
    assert not linear.any() and not infeasible.any()


def test_a_failed_evaluation_leaves_the_row_untested():
    def constraints(P):
        G = (8.0 - P.sum(axis=1))[:, None]
        G[4] = np.inf  # the first row's last forward neighbour
        return G

    linear, infeasible = certify(constraints, np.array([[0.9, 1.9, 3.9], [0.1, 0.0, 0.0]]))
    np.testing.assert_array_equal(linear, [False, True])
    np.testing.assert_array_equal(infeasible, [False, True])


def _runs(name, seeds, certify=True):
    return [eb.solve(eb.benchmarks.get(name), algorithm=BLEAQ(certify_infeasible=certify), seed=seed, target=1e-2)
            for seed in seeds]


@pytest.mark.parametrize("name", ["TP4", "TP6"])
def test_certified_rows_spare_the_searches_of_followers_infeasible_beyond_the_leaders_optimum(name):
    # TP4's and TP6's followers have linear constraints and no feasible answer for many of the leader's x: the
    # searches after infeasible refinements never find one there. Certified, those rows keep their answers.
    seeds = range(3)
    runs, searched = _runs(name, seeds), _runs(name, seeds, certify=False)
    for r, s in zip(runs, searched):
        assert r.success and s.success
        record, before = r.history[-1], s.history[-1]
        assert record["certified_infeasible"] > 0 and record["capped_global"] == 0
        assert before["certified_infeasible"] == 0 and before["capped_global"] > 0
        assert r.n_ll_evals < 0.75 * s.n_ll_evals


def test_a_curved_follower_is_tested_once_and_its_run_takes_the_same_path(monkeypatch):
    # SMD12's follower (cubic constraints) has stuck rows at (5, 5), seed 1: the first test of linearity fails, the
    # run asks no more, and its path is the one without the certificate, d + 3 = 8 evaluations more.
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    calls = []
    original = LowerSettlement._drop_infeasible

    def counted(ctx, state, rows, out):
        before = state.lower_linear
        kept = original(ctx, state, rows, out)
        calls.append((before, state.lower_linear))
        return kept

    monkeypatch.setattr(LowerSettlement, "_drop_infeasible", staticmethod(counted))
    run = eb.solve(p, seed=1, target=1e-2)
    alone = eb.solve(p, algorithm=BLEAQ(certify_infeasible=False), seed=1, target=1e-2)
    assert (None, False) in calls and all(before is not True for before, _ in calls)
    assert run.history[-1]["certified_infeasible"] == 0
    assert (run.n_ul_evals, run.F, run.f) == (alone.n_ul_evals, alone.F, alone.f)
    np.testing.assert_array_equal(run.x, alone.x)
    assert run.n_ll_evals == alone.n_ll_evals + 8
