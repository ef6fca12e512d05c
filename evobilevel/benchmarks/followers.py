"""A bilevel test problem with several followers and a closed-form optimum: MF1.

MF1 (2 upper-level variables; three followers with 1, 2 and 2 variables)::

    leader      min  F = (x1 - 1)^2 + x2^2 + (y1 - 2)^2 + (y22 - 1)^2 - 2 y31,   x in [0, 2] x [-2, 2]
    follower 1  min  (y1 - x1 - x2)^2,                                          y1 in [-4, 4]
    follower 2  min  (y21 - x2)^2 + (y22 - y21 - x1)^2,                          y2 in [-4, 4]^2
    follower 3  min  (y31 - 2)^2 + (y32 - 1)^2  s.t.  y31 + y32 <= x1,          y3 in [-1, 3]^2

Each follower's problem is strictly convex with a unique answer: ``y1 = x1 + x2``, ``y2 = (x2, x1 + x2)`` and, since
``x1 <= 2 < 3`` keeps follower 3's constraint active everywhere, the projection of ``(2, 1)`` onto
``y31 + y32 = x1``: ``y3 = ((1 + x1) / 2, (x1 - 1) / 2)``. Every answer lies inside its box for every ``x`` of
the leader's, so the responses are affine on the whole box and the leader's problem with them is the convex
quadratic ``(x1 - 1)^2 + x2^2 + (x1 + x2 - 2)^2 + (x1 + x2 - 1)^2 - 1 - x1``. Setting its gradient to zero gives
``x1 - x2 = 3/2`` and ``2 x1 + 3 x2 = 3``: ``x* = (3/2, 0)``, inside the box, hence the optimum. There
``y* = (3/2; 0, 3/2; 5/4, 1/4)``, ``F* = -7/4`` and the followers' values are ``0, 0`` and ``9/8`` (``f* = 9/8``,
their sum). Follower 3's constraint is active at the optimum, followers 1 and 2 are unconstrained, and the leader
would rather have them elsewhere: ``y1 = 2``, ``y22 = 1`` and ``y31`` as large as follower 3 allows.
"""

from __future__ import annotations

import numpy as np

from ..followers import Follower
from .base import BenchmarkProblem

__all__ = ["MF1", "PROBLEMS"]


def _follower_1(X, Y):
    return (Y[:, 0] - X[:, 0] - X[:, 1]) ** 2


def _follower_2(X, Y):
    return (Y[:, 0] - X[:, 1]) ** 2 + (Y[:, 1] - Y[:, 0] - X[:, 0]) ** 2


def _follower_3(X, Y):
    return (Y[:, 0] - 2.0) ** 2 + (Y[:, 1] - 1.0) ** 2


def _follower_3_constraints(X, Y):
    return (Y[:, 0] + Y[:, 1] - X[:, 0])[:, None]


class MF1(BenchmarkProblem):
    """MF1: three followers, closed-form optimum (see the module's description).

    Optimum ``x = (3/2, 0)``, ``y = (3/2, 0, 3/2, 5/4, 1/4)``, ``F* = -7/4``, ``f* = 9/8``. Lower-level response:
    ``y = (x1 + x2; x2, x1 + x2; (1 + x1) / 2, (x1 - 1) / 2)`` (unique).
    """

    suite = "MF"

    def __init__(self):
        followers = [
            Follower(_follower_1, ([-4.0], [4.0]), name="follower 1"),
            Follower(_follower_2, ([-4.0, -4.0], [4.0, 4.0]), name="follower 2"),
            Follower(_follower_3, ([-1.0, -1.0], [3.0, 3.0]), constraints=_follower_3_constraints, n_constraints=1,
                     name="follower 3"),
        ]
        self._setup("MF1", ([0.0, -2.0], [2.0, 2.0]), None, 0, 1, {}, followers=followers)

    def _F(self, X, Y):
        return (X[:, 0] - 1.0) ** 2 + X[:, 1] ** 2 + (Y[:, 0] - 2.0) ** 2 + (Y[:, 2] - 1.0) ** 2 - 2.0 * Y[:, 3]

    def _optimal_point(self):
        return [1.5, 0.0], [1.5, 0.0, 1.5, 1.25, 0.25]

    def _ll_response(self, X):
        x1, x2 = X[:, 0], X[:, 1]
        return np.stack([x1 + x2, x2, x1 + x2, (1.0 + x1) / 2.0, (x1 - 1.0) / 2.0], axis=1)


PROBLEMS = (MF1,)
