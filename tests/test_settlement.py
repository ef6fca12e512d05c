"""BLEAQ's lower-level settlement: the global searches for rows whose follower looks infeasible."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

import evobilevel as eb
from evobilevel.algorithms.bleaq.settlement import HOPELESS_SHARE, MIN_STUCK_TRIES, Answers, LowerSettlement
from evobilevel.algorithms.bleaq.state import StuckSearches


def test_hopeless_stuck_rows_are_searched_in_the_share_the_searches_earned():
    # 99 searches that found nothing: p = 1 / 100, so a share p / HOPELESS_SHARE = 0.1 of the stuck rows is searched,
    # spread over the calls by the credit that carries over.
    stuck = StuckSearches(tried=99, rescued=0)
    taken = np.concatenate([LowerSettlement.sample_stuck(stuck, n) for n in (7, 3, 11, 19, 60)])
    assert taken.size == 100 and abs(int(taken.sum()) - 10) <= 1
    assert 0.0 <= stuck.credit < 1.0
    # The same state takes the same rows.
    again = StuckSearches(tried=99, rescued=0)
    np.testing.assert_array_equal(np.concatenate([LowerSettlement.sample_stuck(again, n) for n in (7, 3, 11, 19, 60)]),
                                  taken)


def test_stuck_rows_are_all_searched_while_the_searches_find_feasible_answers_often_enough():
    tried = 50
    stuck = StuckSearches(tried=tried, rescued=int(HOPELESS_SHARE * tried))
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
    state = SimpleNamespace(stuck=StuckSearches())
    X = np.arange(9.0)[:, None]
    out = Answers(X, np.zeros((9, 1)), np.zeros(9), np.r_[0.0, np.ones(8)])
    settlement._search(None, state, np.arange(9), None, out)
    assert MIN_STUCK_TRIES == 5
    assert calls == [([0.0, 1.0, 2.0, 3.0, 4.0, 5.0], None), ([6.0, 7.0, 8.0], [True, True, True])]
    assert (state.stuck.tried, state.stuck.rescued) == (8, 0)


def test_sampling_the_hopeless_searches_saves_lower_level_evaluations_on_an_infeasible_follower(monkeypatch):
    # TP6's follower is infeasible for many of the leader's x: searching every such row again costs more lower-level
    # evaluations in each run, and the answers stay right.
    p = eb.benchmarks.get("TP6")
    seeds = range(3)
    runs = [eb.solve(p, algorithm="bleaq", seed=seed, target=1e-2) for seed in seeds]
    monkeypatch.setattr(LowerSettlement, "sample_stuck", staticmethod(lambda stuck, n: np.ones(n, bool)))
    every = [eb.solve(p, algorithm="bleaq", seed=seed, target=1e-2) for seed in seeds]
    for r, e in zip(runs, every):
        assert r.success and e.success
        assert r.n_ll_evals < e.n_ll_evals
