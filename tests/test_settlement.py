"""BLEAQ's lower-level settlement: the global searches for rows whose follower looks infeasible, and for suspected
local optima."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import evobilevel as eb
from evobilevel.algorithms import BLEAQ
from evobilevel.algorithms.bleaq.settlement import HOPELESS_SHARE, MIN_STUCK_TRIES, Answers, LowerSettlement
from evobilevel.algorithms.bleaq.state import SearchRecord


def test_hopeless_stuck_rows_are_searched_in_the_share_the_searches_earned():
    # 99 searches that found nothing: p = 1 / 100, so a share p / HOPELESS_SHARE = 0.1 of the stuck rows is searched,
    # spread over the calls by the credit that carries over.
    stuck = SearchRecord(tried=99, paid=0)
    taken = np.concatenate([LowerSettlement.sample_stuck(stuck, n) for n in (7, 3, 11, 19, 60)])
    assert taken.size == 100 and abs(int(taken.sum()) - 10) <= 1
    assert 0.0 <= stuck.credit < 1.0
    # The same state takes the same rows.
    again = SearchRecord(tried=99, paid=0)
    np.testing.assert_array_equal(np.concatenate([LowerSettlement.sample_stuck(again, n) for n in (7, 3, 11, 19, 60)]),
                                  taken)


def test_stuck_rows_are_all_searched_while_the_searches_find_feasible_answers_often_enough():
    tried = 50
    stuck = SearchRecord(tried=tried, paid=int(HOPELESS_SHARE * tried))
    assert LowerSettlement.sample_stuck(stuck, 25).all()


def test_stuck_rows_beyond_the_searches_the_rule_lacks_wait_for_its_verdict(monkeypatch):
    # Eight rows whose refinement ended infeasible and one feasible row rejected by phi, before any stuck search:
    # the rule needs MIN_STUCK_TRIES searches to judge, so those go first (with the feasible row); they find
    # nothing, and the three others then get capped searches.
    calls = []

    def search(self, ctx, state, X, Y0, capped=None):
        calls.append((X[:, 0].tolist(), None if capped is None else capped.tolist()))
        return Answers(X, np.zeros((len(X), 1)), np.zeros(len(X)), np.ones(len(X)))  # nothing feasible found

    monkeypatch.setattr(LowerSettlement, "search", search)
    settlement = LowerSettlement(None, None, None, infeasible_evals=200)
    state = SimpleNamespace(stuck=SearchRecord())
    X = np.arange(9.0)[:, None]
    out = Answers(X, np.zeros((9, 1)), np.zeros(9), np.r_[0.0, np.ones(8)])
    settlement._search(None, state, np.arange(9), None, out)
    assert MIN_STUCK_TRIES == 5
    assert calls == [([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], None), ([6.0, 7.0, 8.0], [True, True, True])]
    assert (state.stuck.tried, state.stuck.paid) == (8, 0)


def test_sampling_the_hopeless_searches_saves_lower_level_evaluations_on_an_infeasible_follower(monkeypatch):
    # TP6's follower is infeasible for many of the leader's x: searching every such row again costs more lower-level
    # evaluations in each run, and the answers stay right. (Its linear constraints would certify those rows
    # infeasible without searches; the rule is for followers that cannot be certified.)
    p = eb.benchmarks.get("TP6")
    seeds = range(3)
    algorithm = BLEAQ(certify_infeasible=False)
    runs = [eb.solve(p, algorithm=algorithm, seed=seed, target=1e-2) for seed in seeds]
    monkeypatch.setattr(LowerSettlement, "sample_stuck", staticmethod(lambda stuck, n: np.ones(n, bool)))
    every = [eb.solve(p, algorithm=algorithm, seed=seed, target=1e-2) for seed in seeds]
    for r, e in zip(runs, every):
        assert r.success and e.success
        assert r.n_ll_evals < e.n_ll_evals


def test_suspects_are_all_searched_until_their_searches_have_mostly_failed():
    # Before any search, and while the searches have found a lower value at least as often as not (Laplace's
    # estimate p = (improved + 1) / (tried + 2) >= 1/2), every suspect is searched ...
    for tried, improved in ((0, 0), (2, 1), (10, 5), (10, 10)):
        assert LowerSettlement.sample_suspects(SearchRecord(tried=tried, paid=improved), 30).all()
    # ... below, a share 2 p: after six fruitless searches p = 1/8, and one suspect in four is searched, the credit
    # carrying over from call to call.
    fruitless = SearchRecord(tried=6, paid=0)
    taken = np.concatenate([LowerSettlement.sample_suspects(fruitless, n) for n in (3, 17, 20)])
    assert np.flatnonzero(taken).tolist() == list(range(3, 40, 4))


def test_suspects_whose_searches_never_pay_keep_their_refined_answers_and_save_evaluations(monkeypatch):
    # On TP5 phi rounds off the kinks of the follower's optimal value, so refinements end above its bound although
    # they are optimal, and the global searches that follow find nothing lower: sampling them saves lower-level
    # evaluations, run for run, and the runs succeed as before. (TP8 is the same case, but its runs restart between
    # two optimal leader's points, and which attempt finds which sets their cost more than the searches do.)
    runs = {}
    for sample in ("share", "all"):
        if sample == "all":
            monkeypatch.setattr(LowerSettlement, "sample_suspects", staticmethod(lambda suspects, n: np.ones(n, bool)))
        runs[sample] = [eb.solve(eb.benchmarks.get("TP5"), algorithm="bleaq", seed=seed, target=1e-2)
                        for seed in range(6)]
    assert all(r.success for rs in runs.values() for r in rs)
    kept = sum(r.history[-1]["suspects_kept"] for r in runs["share"])
    assert kept > 0 and all(r.history[-1]["suspects_kept"] == 0 for r in runs["all"])
    assert all(a.n_ll_evals <= b.n_ll_evals for a, b in zip(runs["share"], runs["all"]))
    assert sum(r.n_ll_evals for r in runs["share"]) < sum(r.n_ll_evals for r in runs["all"])


def test_the_refinement_of_a_row_with_an_accurate_phi_ends_where_it_meets_phi():
    # Rows 0 and 2 have a trusted phi, row 1 not: the refinement is told the largest values that meet phi where it is
    # trusted (there a point that meets phi is accepted, converged or not), and nothing elsewhere.
    from evobilevel.algorithms.bleaq.response import Predictions, ResponseModel
    from evobilevel.lower import LowerSolution
    from evobilevel.lower.refinement import StartValues

    bounds = (np.zeros(1), np.ones(1))
    response = ResponseModel(bounds, bounds, accept_tol=1e-6, psi_tol=1e-3, refine_tol=1e-3)
    phi = np.array([2.0, 3.0, -4.0])
    predictions = Predictions(Y=np.zeros((3, 1)), phi=phi, trusted=np.array([True, False, True]),
                              determined=np.zeros((3, 1), bool), f_bound=phi + 1.0, psi_error=np.zeros((3, 1)))
    told = {}

    def solve_lower(X, solver, **kwargs):
        told.update(kwargs)
        return LowerSolution(Y=np.zeros((3, 1)), f=phi, cv=np.zeros(3), success=np.zeros(3, bool),
                             n_evals=np.zeros(3, np.int64))

    settlement = LowerSettlement(response, None, None, infeasible_evals=10)
    state = SimpleNamespace(archive=SimpleNamespace(nearest_curvature=lambda X: None),
                            counts={"refined": 0, "suspects_kept": 0}, suspects=SearchRecord(), objective_first=False)
    out = Answers.none(np.zeros((3, 1)), 1)
    todo = np.ones(3, bool)
    # The predictions evaluated (rows 0 and 2) go to the refinement with their values, not to be evaluated again.
    known = StartValues(np.array([True, False, True]), np.array([2.5, np.inf, -3.0]), np.zeros((3, 0)), np.zeros(3))
    settlement._refine(SimpleNamespace(solve_lower=solve_lower), state, predictions, np.zeros((3, 1, 1)), out, todo,
                       known)
    np.testing.assert_array_equal(told["f_accept"], [2.0 + 3e-6, -np.inf, -4.0 + 5e-6])
    np.testing.assert_array_equal(told["first_values"].known, known.known)
    np.testing.assert_array_equal(told["first_values"].f, known.f)
    # Rows that end at phi without converging are settled where phi is trusted.
    np.testing.assert_array_equal(todo, [False, True, False])
