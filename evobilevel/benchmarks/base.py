"""Shared machinery of the benchmark suites: a problem defined by vectorised methods."""

from __future__ import annotations

import numpy as np

from ..problem import Optimum, Problem

__all__ = ["BenchmarkProblem"]


class BenchmarkProblem(Problem):
    """A benchmark problem whose subclass implements the four batch functions.

    Subclasses call :meth:`_setup` from ``__init__`` and implement ``_F(X, Y) -> (n,)``,
    ``_f(X, Y) -> (n,)`` and, when they have constraints, ``_G(X, Y) -> (n, m_ul)``,
    ``_g(X, Y) -> (n, m_ll)``;
    ``_optimal_point()`` returns the optimal ``(x, y)`` at the instance's size (or ``None``), from which
    ``optimum.F`` and ``optimum.f`` are computed, never hard-coded; ``_preferred_response(x)`` may return another
    lower-level optimum at that ``x`` that the leader prefers, whose ``F`` becomes ``optimum.F_low``.
    ``_ll_response(X)`` returns the exact lower-level optimum ``Y*`` (n, ll_dim) for a validated batch ``X``
    (n, ul_dim), or ``None`` when it is not known in closed form; :meth:`ll_response` validates its input and calls it.
    """

    suite: str = ""

    def _setup(
        self, name, ul_bounds, ll_bounds, n_ul_constraints: int, n_ll_constraints: int, settings: dict, *,
        ul_integrality=None, ll_integrality=None, followers=None, n_objectives: int = 1,
    ):
        """Build the problem; ``followers`` (a list of :class:`~evobilevel.Follower`) replaces ``_f``, ``_g``,
        ``ll_bounds``, ``n_ll_constraints`` and ``ll_integrality``."""
        if followers is None:
            lower = {"lower": self._f, "ll_bounds": ll_bounds, "n_ll_constraints": n_ll_constraints,
                     "lower_constraints": self._g if n_ll_constraints else None, "ll_integrality": ll_integrality}
        else:
            lower = {"followers": followers}
        super().__init__(
            upper=self._F,
            ul_bounds=ul_bounds,
            upper_constraints=self._G if n_ul_constraints else None,
            n_ul_constraints=n_ul_constraints,
            ul_integrality=ul_integrality,
            vectorized=True,
            name=name,
            **lower,
            n_objectives=n_objectives,
        )
        self._settings = dict(settings)
        point = self._optimal_point()
        if point is not None:
            x, y = (np.asarray(v, dtype=float) for v in point)
            F, _ = self.upper(x, y)
            f, _ = self.lower(x, y)
            preferred = self._preferred_response(x)
            F_low = None if preferred is None else float(self.upper(x, preferred)[0])
            self._optimum = Optimum(x=x, y=y, F=float(F), f=float(f), F_low=F_low)

    @property
    def settings(self) -> dict:
        return {"ul_dim": self.ul_dim, "ll_dim": self.ll_dim, **self._settings}

    def _optimal_point(self):
        return None

    def _preferred_response(self, x):
        return None

    def ll_response(self, X):
        """The exact lower-level optimum for each upper-level point, where it is known in closed form.

        Parameters
        ----------
        X : array_like, shape (n, ul_dim) or (ul_dim,)

        Returns
        -------
        Y : ndarray, shape (n, ll_dim) (shape (ll_dim,) for a single 1-D point), or None
            ``None`` when the problem has no closed-form lower-level response. A row of NaN marks an ``x``
            whose lower-level problem has no feasible point.

        Raises
        ------
        ValueError
            If ``X`` does not have ``ul_dim`` columns.
        """
        single = np.ndim(X) == 1
        X = np.asarray(X, dtype=float)
        if single:
            X = X[None, :]
        if X.ndim != 2 or X.shape[1] != self.ul_dim:
            raise ValueError(f"{self.name}: X must have shape (n, {self.ul_dim}), got {X.shape}")
        Y = self._ll_response(X)
        if Y is None:
            return None
        return Y[0] if single else Y

    def _ll_response(self, X: np.ndarray) -> np.ndarray | None:
        return None
