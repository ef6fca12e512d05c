"""Bounds as users write them, the widths distances are measured in, and Latin-hypercube samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import Bounds

import evobilevel as eb
from evobilevel.problem import ProblemDefinitionError
from evobilevel.space import latin_hypercube, parse_bounds, widths


def _problem(ul_bounds):
    return eb.Problem(lambda x, y: float(np.sum(x**2)), lambda x, y: float(np.sum((y - x[0]) ** 2)),
                      ul_bounds, ([-1.0], [1.0]), name="bounded")


@pytest.mark.parametrize("bounds", [
    ([-5, -5, 0], [5, 5, 1]),                        # (lower, upper)
    [(-5, 5), (-5, 5), (0, 1)],                      # scipy's pairs
    Bounds([-5, -5, 0], [5, 5, 1]),                  # scipy's Bounds
    np.array([[-5, -5, 0], [5, 5, 1]]),              # a (2, d) array
    np.array([[-5, 5], [-5, 5], [0, 1]]),            # a (d, 2) array
])
def test_the_usual_forms_of_bounds_give_the_same_box(bounds):
    lo, hi = _problem(bounds).ul_bounds
    assert lo.tolist() == [-5, -5, 0] and hi.tolist() == [5, 5, 1]


def test_two_variables_in_pairs_are_not_pinned():
    # Read as (lower, upper), [(-5, 5), (-5, 5)] would fix x0 = -5 and x1 = 5: the pairs reading is the one.
    p = _problem([(-5, 5), (-5, 5)])
    assert p.ul_bounds[0].tolist() == [-5, -5] and p.ul_bounds[1].tolist() == [5, 5]
    # The other way round: as pairs, ([0, 0], [1, 1]) would pin both; as (lower, upper) it is the unit square.
    assert _problem(([0, 0], [1, 1])).ul_bounds[1].tolist() == [1, 1]
    # Two numpy arrays are (lower, upper), whatever the values.
    lo, hi = _problem((np.array([0.0, 1.0]), np.array([2.0, 3.0]))).ul_bounds
    assert lo.tolist() == [0, 1] and hi.tolist() == [2, 3]
    # Bounds from scipy say what they mean.
    assert _problem(Bounds([0, 1], [2, 3])).ul_bounds[0].tolist() == [0, 1]


def test_a_table_both_readings_accept_is_refused_with_both_named():
    with pytest.raises(ProblemDefinitionError) as info:
        _problem([(0, 1), (2, 3)])
    message = str(info.value)
    assert "bounded: ul_bounds [[0.0, 1.0], [2.0, 3.0]] is ambiguous" in message
    assert "as (lower, upper): lower=[0.0, 1.0], upper=[2.0, 3.0]" in message
    assert "as (low, high) pairs: lower=[0.0, 2.0], upper=[1.0, 3.0]" in message
    assert "scipy.optimize.Bounds" in message


def test_a_table_that_only_reads_with_a_pinned_variable_is_refused():
    # (lower, upper): x0 in [1, 1] (pinned), x1 in [2, 3]; pairs: x0 in [1, 2], x1 in [1, 3]... is clean, so taken.
    assert _problem([(1, 2), (1, 3)]).ul_bounds[0].tolist() == [1, 1]
    # Neither reading is clean: (lower, upper) pins x0, pairs give 3 > 1.
    with pytest.raises(ProblemDefinitionError, match="each reading pins a variable"):
        _problem([(1, 3), (1, 1)])


@pytest.mark.parametrize("bounds, match", [
    ("abc", "must be a pair"),
    ([(0, 1, 2), (3, 4, 5), (6, 7, 8)], "got shape"),
    (([0, 0], [1]), "1-D arrays of one length"),
    (([0, np.inf], [1, 1]), "must be finite"),
    ((["a", 0], [1, 1]), "must hold numbers|must be a pair"),
])
def test_unreadable_bounds_get_a_clear_error(bounds, match):
    with pytest.raises(ProblemDefinitionError, match=match):
        _problem(bounds)


def test_parse_bounds_reads_a_single_variable_either_way():
    for bounds in [(0, 1), ([0], [1]), [(0, 1)], Bounds(0, 1)]:
        lo, hi = parse_bounds(bounds)
        assert lo.tolist() == [0.0] and hi.tolist() == [1.0]


def test_widths_and_latin_hypercube():
    lo, hi = np.array([0.0, 2.0, -1.0]), np.array([1.0, 2.0, 3.0])
    assert widths((lo, hi)).tolist() == [1.0, 1.0, 4.0]  # a fixed variable gets width 1
    X = latin_hypercube(np.random.default_rng(0), lo, hi, 8)
    assert X.shape == (8, 3) and np.all((X >= lo) & (X <= hi))
    strata = np.floor((X[:, 2] - lo[2]) / 4 * 8).astype(int)
    assert sorted(strata.tolist()) == list(range(8))  # one point in each eighth of the range
    batch = latin_hypercube(np.random.default_rng(0), lo, hi, 8, batch=(5,))
    assert batch.shape == (5, 8, 3)
