"""The restart rule: which finished attempts confirm the kept answer, which show another basin, and when a restart's
population has come back to the kept answer."""

import numpy as np

from evobilevel.algorithms.base import Candidate
from evobilevel.algorithms.restarts import RestartRule, RestartState

WIDTHS = np.array([15.0, 15.0])


def answer(x, F, feasible=True, violation=1.0):
    return Candidate(np.array(x, dtype=float), np.zeros(1), F, 0.0, 0.0 if feasible else violation, 0.0)


def after_first(rule, first):
    state = RestartState()
    assert rule.after_attempt(state, first)  # the first attempt always gets its probe
    assert state.kept is first and state.scale == rule.probe
    return state


def test_an_equally_good_answer_elsewhere_is_another_basin_not_a_confirmation():
    # A symmetric upper level: (3.13, 4.4) and (-3.13, -4.4) are equally good local optima; finding the second
    # after the first confirms nothing, and shows two basins (the next population doubles).
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([3.13, 4.4], 0.0734))
    assert rule.after_attempt(state, answer([-3.13, -4.4], 0.0734))
    assert not state.confirmed and state.n_fruitless == 1 and state.scale == 2 * rule.probe


def test_the_kept_answer_found_again_at_its_place_confirms_it():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    kept = answer([0.0, 0.0], 1e-5)
    state = after_first(rule, kept)
    assert not rule.after_attempt(state, answer([0.01, -0.03], 5e-5))
    assert state.confirmed and state.kept is kept
    assert "found again by restart 1" in rule.reason(state)
    # Just beyond a tenth of a range in one variable is another place, hence another answer.
    state = after_first(rule, kept)
    assert rule.after_attempt(state, answer([0.0, 1.6], 1e-5)) and not state.confirmed


def test_a_value_beyond_the_tolerance_at_the_same_place_is_no_confirmation():
    # Attempts that stop at different values in one basin (a follower answered less precisely, a kink) have not
    # agreed on the answer: a better value becomes the kept one, a worse one counts as no progress.
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([0.0, 30.0], 0.011))
    better = answer([0.0, 30.0], 0.0005)
    assert rule.after_attempt(state, better) and not state.confirmed
    assert state.kept is better and state.n_fruitless == 0
    assert rule.after_attempt(state, answer([0.0, 30.0], 0.0126))
    assert not state.confirmed and state.n_fruitless == 1


def test_an_infeasible_attempt_confirms_nothing():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([0.0, 0.0], 1.0))
    assert rule.after_attempt(state, answer([0.0, 0.0], 0.5, feasible=False))
    assert not state.confirmed and state.n_fruitless == 1


def test_between_infeasible_answers_only_a_violation_lower_beyond_the_tolerance_is_progress():
    # Attempts on a leader infeasible everywhere end at its least violation again and again, to rounding: that is
    # no progress, and such attempts run out of patience; a violation lower beyond the tolerance is kept as progress.
    rule = RestartRule(limit=12, patience=2, x_widths=WIDTHS)
    state = after_first(rule, answer([2.0, 2.0], 5.0, feasible=False, violation=1.0))
    assert rule.after_attempt(state, answer([2.0, 2.01], 5.0, feasible=False, violation=1.0 - 1e-6))
    assert state.n_fruitless == 1
    lower = answer([0.0, 0.0], 5.0, feasible=False, violation=0.5)
    assert rule.after_attempt(state, lower) and state.kept is lower and state.n_fruitless == 0
    assert rule.after_attempt(state, answer([0.0, 0.0], 5.0, feasible=False, violation=0.5 - 1e-6))
    assert not rule.after_attempt(state, answer([0.0, 0.0], 5.0, feasible=False, violation=0.5 - 2e-6))
    assert state.n_fruitless == 2 and "2 attempts in a row found nothing better" in rule.reason(state)


def test_an_attempt_without_a_feasible_member_is_no_answer_found_once():
    # Kept A, then B elsewhere, then an attempt that ended without a feasible member, then A again: A has been found
    # twice and B once; the infeasible attempt found no answer, and does not put off the confirmation.
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    kept = answer([0.0, 0.0], 1.0)
    state = after_first(rule, kept)
    assert rule.after_attempt(state, answer([5.0, 5.0], 2.0))
    assert rule.after_attempt(state, answer([9.0, 9.0], 0.5, feasible=False))
    assert [count for _, count in state.found] == [1, 1]
    assert not rule.after_attempt(state, answer([0.01, 0.0], 1.0)) and state.confirmed


def test_a_population_without_a_feasible_member_comes_back_to_a_feasible_kept_answer_nearby():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([20.0, 5.0], 225.0))
    assert rule.coming_back(state, answer([21.0, 4.0], 180.0, feasible=False))
    assert not rule.coming_back(state, answer([27.0, 1.4], 180.0, feasible=False))  # beyond a tenth of a range
    infeasible_kept = after_first(rule, answer([2.0, 2.0], 5.0, feasible=False))
    assert not rule.coming_back(infeasible_kept, answer([2.1, 2.0], 5.0, feasible=False))


def test_a_better_answer_sends_the_next_restart_back_to_the_probe_s_size():
    # Growth follows failure: an attempt that found nothing better doubles the next population (up to the limit);
    # one that found a better answer shows that attempts of this size still find gains, and the next restart probes
    # the new kept answer as the first restart probed the first one.
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([3.13, 4.4], 0.0734))
    assert rule.after_attempt(state, answer([-3.13, 4.4], 0.0735)) and state.scale == 2 * rule.probe
    assert rule.after_attempt(state, answer([6.2, 0.0], 0.0995)) and state.scale == 4 * rule.probe
    better = answer([0.0, 0.0], 1e-6)
    assert rule.after_attempt(state, better) and state.kept is better and state.scale == rule.probe
    assert state.n_fruitless == 0


def test_a_run_to_its_target_never_takes_a_confirmation():
    rule = RestartRule(limit=2, patience=5, x_widths=WIDTHS)
    state = after_first(rule, answer([0.0, 0.0], 1e-5))
    assert rule.after_attempt(state, answer([0.0, 0.0], 1e-5), persist=True)
    assert not rule.after_attempt(state, answer([0.0, 0.0], 1e-5), persist=True)  # the limit ends it
    assert not state.confirmed and "limit" in rule.reason(state)


def test_a_population_gathered_around_the_kept_answer_has_come_back_to_it():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = RestartState()
    X = np.array([[0.2, -0.1], [1.4, 0.3], [-1.0, 1.2]])
    assert not rule.gathered(state, X)  # nothing kept yet: the first attempt
    state = after_first(rule, answer([0.0, 0.0], 1e-5))
    assert rule.gathered(state, X)
    assert not rule.gathered(state, np.vstack([X, [[0.0, 1.6]]]))  # one member still elsewhere
    state = after_first(rule, answer([0.0, 0.0], 1e-5, feasible=False))
    assert not rule.gathered(state, X)  # an infeasible kept answer is nothing to come back to


def test_two_answers_are_apart_beyond_a_tenth_of_some_range():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    kept = answer([0.0, 0.0], 1e-5)
    assert not rule.apart(kept, answer([1.4, -1.4], 3.0))
    assert rule.apart(kept, answer([1.6, 0.0], 3.0))
    assert not rule.apart(kept, answer([5.0, 5.0], 3.0, feasible=False))  # an infeasible answer is at no place


def test_a_confirmation_counts_once_the_kept_answer_is_found_more_often_than_answers_found_once():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    kept = answer([-3.13, 4.4], 0.0734)
    state = after_first(rule, kept)
    assert rule.after_attempt(state, answer([0.0, 8.8], 0.1954))  # another answer, worse
    assert rule.after_attempt(state, answer([6.25, -4.4], 0.22))  # and another
    # The kept answer found again: twice, as often as the two answers found once. The attempts keep finding new
    # answers, so the next one may well find a better one: no confirmation yet.
    assert rule.after_attempt(state, answer([-3.13, 4.4], 0.0734))
    assert not state.confirmed and state.n_fruitless == 3
    # A third time: more often than the answers found once.
    assert not rule.after_attempt(state, answer([-3.13, 4.41], 0.0734))
    assert state.confirmed and [count for _, count in state.found] == [3, 1, 1]


def test_the_answers_are_the_better_of_the_kept_and_the_current_best_then_the_other():
    rule = RestartRule(limit=12, patience=5, x_widths=WIDTHS)
    state = RestartState()
    current = answer([0.0, 30.0], 2e-4)
    assert rule.answers(state, current) == [current]  # the first attempt: nothing kept
    kept = answer([0.0, 0.0], 1e-4)
    state = after_first(rule, kept)
    assert rule.answers(state, current) == [kept, current]
    better = answer([0.0, 30.0], 1e-5)
    assert rule.answers(state, better) == [better, kept]
