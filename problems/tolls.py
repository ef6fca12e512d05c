"""Toll setting: a road operator sets two tolls; drivers answer with a user equilibrium.

The story
---------
Commuters travel from a suburb ``O`` to the city ``D``, 10 000 vehicles an hour. A concession operates two
tolled links, the motorway ``O -> A`` (toll ``tau_1``) and the expressway ``O -> B`` (toll ``tau_2``); the
old road ``O -> D`` through the villages is free but slow. The operator wants as much toll revenue as possible;
drivers pick the route with the lowest generalised cost (travel time at 0.25 EUR a minute plus tolls), and every
link slows down as more vehicles use it.

Network (links with travel time ``t_a(v) = a_a + b_a v`` minutes, ``v`` in thousand vehicles an hour)::

    e1  O -> A  motorway, tolled tau_1     a = 10, b = 1.0         routes  P1 = e1 e2     (pays tau_1)
    e2  A -> D                             a = 12, b = 1.5                 P2 = e3 e4     (pays tau_2)
    e3  O -> B  expressway, tolled tau_2   a = 15, b = 1.2                 P3 = e1 e5 e4  (pays tau_1)
    e4  B -> D  bridge                     a =  8, b = 1.0                 P4 = e6        (free)
    e5  A -> B  connector                  a =  2, b = 1.0
    e6  O -> D  old road                   a = 30, b = 2.0

Bilevel model::

    leader    x = (tau_1, tau_2)  in [0, 10]^2                EUR per vehicle
              F(x, y) = -(tau_1 (h_1 + h_3) + tau_2 h_2)   thousand EUR an hour, negated
    follower  y = (h_1, h_2, h_3) in [0, 10]^3                 flows on P1-P3; the rest, h_4 = 10 - sum(y), on P4
              f(x, y) = sum_a 0.25 (a_a v_a + b_a v_a^2 / 2) + tau_1 v_1 + tau_2 v_3
              subject to  g(x, y) = h_1 + h_2 + h_3 - 10 <= 0       (h_4 >= 0)

``f`` is Beckmann's potential: its minimiser is the Wardrop user equilibrium, where every used route costs the
same and no unused route costs less. It is strictly convex in the route flows (every route has a link of its
own), so the follower's answer is unique.

The functions are plain per-point Python (``vectorized=False``), the way a user would first write them.

What a good answer looks like
-----------------------------
``tau ~ (3.607, 3.304)`` EUR with a revenue of ``-F ~ 15.281`` thousand EUR an hour. All four routes are then
used: about 1.44, 1.73 and 1.21 thousand vehicles an hour on P1-P3, and 5.62 stay on the free old road; a higher
toll would push more drivers onto it than it earns on the others.

How the reference was established: for affine link costs the equilibrium solves a small convex quadratic
programme, whose exact solution follows from enumerating which routes are used (15 cases, each one linear
system, kept when it satisfies the Wardrop conditions). A grid over both tolls with that exact response, polished
with Nelder-Mead, gives ``F* = -15.28086`` at ``tau = (3.60714, 3.30357)``; ``tests/test_problems.py`` repeats it
independently.
"""

from __future__ import annotations

import numpy as np

import evobilevel as eb

DEMAND = 10.0  # thousand vehicles an hour from O to D
VALUE_OF_TIME = 0.25  # EUR per minute
FREE_FLOW = np.array([10.0, 12.0, 15.0, 8.0, 2.0, 30.0])  # a_a, minutes
SLOPE = np.array([1.0, 1.5, 1.2, 1.0, 1.0, 2.0])  # b_a, minutes per thousand vehicles an hour
# ROUTE_LINKS[k, a] = 1 when route k uses link a (routes P1-P4, links e1-e6).
ROUTE_LINKS = np.array(
    [
        [1, 1, 0, 0, 0, 0],
        [0, 0, 1, 1, 0, 0],
        [1, 0, 0, 1, 1, 0],
        [0, 0, 0, 0, 0, 1],
    ],
    dtype=float,
)
TOLLED_LINKS = [0, 2]  # e1 (tau_1) and e3 (tau_2)


def route_flows(y) -> np.ndarray:
    """All four route flows ``h`` (4,) from the follower's variables ``y = (h_1, h_2, h_3)``."""
    return np.array([y[0], y[1], y[2], DEMAND - y[0] - y[1] - y[2]])


def link_flows(y) -> np.ndarray:
    """Link flows ``v`` (6,) of the route flows given by ``y`` (3,)."""
    return route_flows(y) @ ROUTE_LINKS


def upper(x, y) -> float:
    """F(x, y): the operator's negative toll revenue, thousand EUR an hour; x (2,) tolls, y (3,) route flows."""
    v = link_flows(y)
    return -float(x[0] * v[TOLLED_LINKS[0]] + x[1] * v[TOLLED_LINKS[1]])


def lower(x, y) -> float:
    """f(x, y): Beckmann's potential of the route flows y (3,) under the tolls x (2,), in thousand EUR an hour."""
    v = link_flows(y)
    time_part = VALUE_OF_TIME * (FREE_FLOW @ v + 0.5 * SLOPE @ v**2)
    return float(time_part + x[0] * v[TOLLED_LINKS[0]] + x[1] * v[TOLLED_LINKS[1]])


def lower_constraints(x, y) -> np.ndarray:
    """g(x, y) (1,): the old road's flow must not be negative, ``h_1 + h_2 + h_3 - DEMAND <= 0``."""
    return np.array([y[0] + y[1] + y[2] - DEMAND])


problem = eb.Problem(
    upper,
    lower,
    ul_bounds=([0.0, 0.0], [10.0, 10.0]),
    ll_bounds=([0.0, 0.0, 0.0], [DEMAND, DEMAND, DEMAND]),
    lower_constraints=lower_constraints,
    n_ll_constraints=1,
    vectorized=False,
    name="tolls",
)
