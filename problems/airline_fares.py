"""Airline fares: constraints at both levels. The airline sets two fares; a corporate travel buyer books.

The story
---------
An airline sells economy and premium seats on a route (``p_1``, ``p_2``, in hundreds of EUR); a competitor flies
the same route in economy at a fixed fare of 4. A company's travel department books ``q_1`` economy and ``q_2``
premium trips with the airline and ``q_3`` trips with the competitor (trips a week, in tens) so as to get the most
value for its money: a quadratic value of the trips (the options substitute for one another) minus what they
cost. It has a travel budget of 30 a week and a policy that at most 30 % of the trips are premium. The airline
maximises its margin (its cost per trip is 2 in economy and 3 in premium), but it has only 45 seats a week on
the route.

Bilevel model::

    leader    x = (p_1, p_2)           in [0, 15]^2
              F(x, y) = -((p_1 - 2) q_1 + (p_2 - 3) q_2)
              subject to  G(x, y) = q_1 + q_2 - 4.5 <= 0                  seats (couples the levels)
    follower  y = (q_1, q_2, q_3)      in [0, 20]^3
              f(x, y) = p_1 q_1 + p_2 q_2 + 4 q_3 - (a'y - y'By / 2),   a = (10, 14, 9)
              subject to  g_1(x, y) = p_1 q_1 + p_2 q_2 + 4 q_3 - 30 <= 0    travel budget
                          g_2(x, y) = q_2 - 0.3 (q_1 + q_2 + q_3) <= 0      premium policy

with ``B = [[1, 0.4, 0.5], [0.4, 1, 0.3], [0.5, 0.3, 1]]`` (positive definite, so the follower's problem is a
strictly convex quadratic programme with a unique answer).

What a good answer looks like
-----------------------------
About ``p = (4.104, 7.502)``: the company spends its whole budget, books the largest premium share its policy
allows, ``q ~ (2.735, 1.765, 1.384)``, and the airline fills its 45 seats and earns ``-F ~ 13.699``. All three
constraints are active: the airline would sell more at lower fares, but has no seats left.

How the reference was established: the follower's answer satisfies the KKT conditions of a quadratic programme
with five linear inequality constraints (budget, policy, ``q >= 0``); enumerating which of them are active (each
case one linear system) and keeping the case whose multipliers are non-negative and whose point is feasible gives
the exact answer. A grid over both fares with that exact response, kept where the seat constraint holds and
zoomed in around its best point, gives ``F* = -13.69908`` at ``p = (4.10354, 7.50168)``; ``tests/test_problems.py``
repeats it independently.
"""

from __future__ import annotations

import numpy as np

import evobilevel as eb

COMPETITOR_FARE = 4.0
COST = np.array([2.0, 3.0])  # the airline's cost per economy and premium trip
SEATS = 4.5  # tens of seats a week
BUDGET = 30.0
PREMIUM_SHARE = 0.3
VALUE = np.array([10.0, 14.0, 9.0])  # a: value of the first trip of each kind
SUBSTITUTION = np.array([[1.0, 0.4, 0.5], [0.4, 1.0, 0.3], [0.5, 0.3, 1.0]])  # B


def fares(X: np.ndarray) -> np.ndarray:
    """The fare of each option, (n, 3): the airline's two fares X (n, 2) and the competitor's."""
    return np.column_stack([X, np.full(len(X), COMPETITOR_FARE)])


def upper(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """F(X, Y): the airline's negative margin; X (n, 2) fares, Y (n, 3) trips booked -> (n,)."""
    return -((X - COST) * Y[:, :2]).sum(axis=1)


def upper_constraints(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """G(X, Y) (n, 1): trips booked with the airline beyond its seats."""
    return (Y[:, 0] + Y[:, 1] - SEATS)[:, None]


def lower(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """f(X, Y): the company's cost of travel minus the value of its trips -> (n,)."""
    value = Y @ VALUE - 0.5 * np.einsum("ni,ij,nj->n", Y, SUBSTITUTION, Y)
    return (fares(X) * Y).sum(axis=1) - value


def lower_constraints(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """g(X, Y) (n, 2): the travel budget and the premium policy, feasible where <= 0."""
    spent = (fares(X) * Y).sum(axis=1)
    return np.column_stack([spent - BUDGET, Y[:, 1] - PREMIUM_SHARE * Y.sum(axis=1)])


problem = eb.Problem(
    upper,
    lower,
    ul_bounds=([0.0, 0.0], [15.0, 15.0]),
    ll_bounds=([0.0, 0.0, 0.0], [20.0, 20.0, 20.0]),
    upper_constraints=upper_constraints,
    lower_constraints=lower_constraints,
    n_ul_constraints=1,
    n_ll_constraints=2,
    vectorized=True,
    name="airline-fares",
)
