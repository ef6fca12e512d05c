"""Quadratic response models of the lower level: psi (x -> y*) and phi (x -> f*).

A model is fitted by least squares on archived ``(x, y*, f*)`` points near the query. For every output the
form is chosen among linear, pure-quadratic (squares, no cross terms) and full quadratic by the Bayesian
information criterion, and the *selected* form's own coefficients are the ones used. Its error is measured on
held-out neighbours, and a prediction is trusted only inside the box spanned by the training points and when
that error is small.

Reference: A. Sinha, P. Malo, K. Deb, "Evolutionary algorithm for bilevel optimization using approximations of
the lower level optimal solution mapping", Eur. J. Oper. Res. 257(2):395-411, 2017; A. Sinha, Z. Lu, K. Deb,
P. Malo, "Bilevel optimization based on iterative approximation of multiple mappings", J. Heuristics
26:151-185, 2020.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy.linalg.lapack import get_lapack_funcs

from .blas import single_blas_thread

__all__ = ["KINDS", "n_coefficients", "features", "QuadraticModel", "fit_quadratic", "fit_local"]

KINDS = ("linear", "pure_quadratic", "quadratic")

_gelsy, _gelsy_query = get_lapack_funcs(("gelsy", "gelsy_lwork"), dtype=np.float64)


def n_coefficients(d: int, kind: str) -> int:
    """Number of coefficients of a model of ``kind`` in ``d`` inputs."""
    if kind == "linear":
        return 1 + d
    if kind == "pure_quadratic":
        return 1 + 2 * d
    if kind == "quadratic":
        return 1 + d + d * (d + 1) // 2
    raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")


def features(Z: np.ndarray, kind: str) -> np.ndarray:
    """Regression features of Z (n, d) for ``kind``: shape (n, n_coefficients(d, kind))."""
    n, d = Z.shape
    A = np.empty((n, n_coefficients(d, kind)))
    A[:, 0] = 1.0
    A[:, 1:d + 1] = Z
    if kind == "pure_quadratic":
        np.square(Z, out=A[:, d + 1:])
    elif kind == "quadratic":
        i, j = _pairs(d)
        np.multiply(Z[:, i], Z[:, j], out=A[:, d + 1:])
    return A


@cache
def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    """The index pairs (i <= j) of the cross terms in ``d`` inputs (kept: models are built thousands of times)."""
    i, j = np.triu_indices(d)
    i.flags.writeable = j.flags.writeable = False
    return i, j


@dataclass
class QuadraticModel:
    """A fitted multi-output model ``x -> t`` (one selected form per output).

    Attributes
    ----------
    center, scale : ndarray, shape (d,)
        Inputs are standardised as ``(x - center) / scale`` before the features are built.
    kinds : list of str, length m
        Selected form per output.
    coefs : list of ndarray
        Coefficients per output, for its own form.
    lo, hi : ndarray, shape (d,)
        Box spanned by the training inputs.
    valid_error : ndarray, shape (m,)
        Root-mean-square error per output on held-out points (NaN when none were held out).
    train_error : ndarray, shape (m,)
        Root-mean-square residual per output on the training points.
    """

    center: np.ndarray
    scale: np.ndarray
    kinds: list
    coefs: list
    lo: np.ndarray
    hi: np.ndarray
    valid_error: np.ndarray
    train_error: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predictions at X (n, d): shape (n, m)."""
        X = np.atleast_2d(X)
        out = np.empty((X.shape[0], len(self.kinds)))
        for k, A, coef in self._outputs(X):
            out[:, k] = A @ coef
        return out

    def predict_each(self, X: np.ndarray) -> np.ndarray:
        """Predictions at the rows of X (n, d): shape (n, m), each row exactly :meth:`predict`'s for that row alone.

        The features are built for all rows at once (elementwise arithmetic, the same per row), but the product with
        the coefficients is taken row by row: a product over several rows may round differently from one row's.
        """
        X = np.atleast_2d(X)
        out = np.empty((X.shape[0], len(self.kinds)))
        for k, A, coef in self._outputs(X):
            for r in range(A.shape[0]):
                out[r, k] = (A[r:r + 1] @ coef)[0]
        return out

    def _outputs(self, X: np.ndarray):
        """Per output k: k, the features of X (n, d) in its form (built once per form) and its coefficients."""
        Z = (X - self.center) / self.scale
        cache: dict[str, np.ndarray] = {}
        for k, (kind, coef) in enumerate(zip(self.kinds, self.coefs)):
            if kind not in cache:
                cache[kind] = features(Z, kind)
            yield k, cache[kind], coef

    def inside(self, X: np.ndarray) -> np.ndarray:
        """(n,) bool: rows of X within the training box (interpolation, not extrapolation)."""
        X = np.atleast_2d(X)
        return np.all((X >= self.lo) & (X <= self.hi), axis=1)


def fit_quadratic(X: np.ndarray, T: np.ndarray, kinds=KINDS, chosen: list | None = None) -> QuadraticModel:
    """Least-squares fit of T (n, m) on X (n, d), the form per output chosen by BIC.

    Forms with at least as many coefficients as points are skipped (they would interpolate, not fit). With
    ``chosen`` (one form per output) the forms are fixed instead of selected.

    Raises
    ------
    ValueError
        If not even the linear form can be fitted (fewer than d + 2 points).
    """
    X = np.asarray(X, dtype=float)
    T = np.asarray(T, dtype=float)
    if T.ndim == 1:
        T = T[:, None]
    n, d = X.shape
    m = T.shape[1]
    center = X.mean(axis=0)
    scale = X.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    Z = (X - center) / scale
    candidates = list(dict.fromkeys(chosen)) if chosen is not None else list(kinds)
    usable = [kind for kind in candidates if n_coefficients(d, kind) < n]
    if not usable or (chosen is not None and len(usable) < len(candidates)):
        raise ValueError(f"{n} points are too few to fit a model in {d} inputs")
    # A relative floor on the error keeps exact fits comparable (the log of zero otherwise).
    floor = 1e-24 * (1.0 + np.mean(T**2, axis=0))
    best_bic = np.full(m, np.inf)
    kinds_out: list = [None] * m
    coefs_out: list = [None] * m
    mse_out = np.zeros(m)
    # One BLAS thread: LAPACK's rounding may depend on the thread count, and a fit must come out the same in the
    # run's process as in a worker of joblib (one thread), on any machine.
    with single_blas_thread():
        for kind in usable:
            A = features(Z, kind)
            coef = _least_squares(A, T)
            mse = np.mean((A @ coef - T) ** 2, axis=0)
            bic = n * np.log(np.maximum(mse, floor)) + A.shape[1] * np.log(n)
            take = bic < best_bic if chosen is None else np.array([c == kind for c in chosen])
            for j in np.flatnonzero(take):
                best_bic[j], kinds_out[j], coefs_out[j], mse_out[j] = bic[j], kind, coef[:, j].copy(), mse[j]
    return QuadraticModel(center, scale, kinds_out, coefs_out, X.min(axis=0), X.max(axis=0),
                          np.full(m, np.nan), np.sqrt(mse_out))


def _least_squares(A: np.ndarray, T: np.ndarray) -> np.ndarray:
    """The minimum-norm least-squares coefficients (p, m) of T (n, m) on the columns of A (n, p), n > p.

    By a complete orthogonal factorisation with column pivoting (LAPACK's gelsy, called as ``scipy.linalg.lstsq``
    calls it, without that function's checks): at these sizes (tens of rows, up to 66 columns) a third to a quarter
    of the time of the singular value decomposition (gelsd, numpy's), with the same coefficients up to rounding.
    Columns are dropped below numpy's rank threshold for gelsd, machine epsilon times the larger dimension
    (relative to the largest pivot): the constant feature columns of inputs that did not vary, for one.
    """
    n, p = A.shape
    cond = np.finfo(float).eps * n
    _, coef, _, _, info = _gelsy(A, T, np.zeros((p, 1), np.int32), cond, _gelsy_work(n, p, T.shape[1], cond),
                                 False, False)
    if info < 0:
        raise ValueError(f"argument {-info} of LAPACK's gelsy is invalid")
    return coef[:p]


@cache
def _gelsy_work(n: int, p: int, m: int, cond: float) -> int:
    """The optimal workspace of gelsy for an (n, p) matrix and m right-hand sides (kept: one query per shape)."""
    work, info = _gelsy_query(n, p, m, cond)
    if info:
        raise ValueError(f"LAPACK's gelsy workspace query failed ({info})")
    return int(work.real)


def fit_local(X: np.ndarray, T: np.ndarray, x_query: np.ndarray, n_train: int, n_valid: int,
              rng: np.random.Generator, scale: np.ndarray | None = None) -> QuadraticModel | None:
    """A model fitted on the neighbours of ``x_query``, with its error measured on held-out neighbours.

    The ``n_train + n_valid`` archived points nearest to ``x_query`` are split at random; the form per output is
    chosen on the training part, its error measured on the held-out part, and the model then refitted in the
    same form on all of them (more data for the prediction; the held-out error slightly overstates its error).

    Parameters
    ----------
    X : ndarray, shape (N, d)
        Archived inputs.
    T : ndarray, shape (N, m)
        Archived outputs.
    x_query : ndarray, shape (d,)
    n_train, n_valid : int
    rng : Generator
    scale : ndarray, shape (d,), optional
        Per-input scale of the distance (the box widths); unscaled when omitted.

    Returns
    -------
    QuadraticModel or None
        None when the archive holds fewer than ``n_train + n_valid`` points.
    """
    n_total = n_train + n_valid
    if X.shape[0] < n_total:
        return None
    s = 1.0 if scale is None else scale
    d2 = (((X - x_query) / s) ** 2).sum(axis=1)
    near = np.argpartition(d2, n_total - 1)[:n_total] if X.shape[0] > n_total else np.arange(n_total)
    near = rng.permutation(near)
    train, valid = near[:n_train], near[n_train:]
    model = fit_quadratic(X[train], T[train])
    if n_valid:
        valid_error = np.sqrt(np.mean((model.predict(X[valid]) - T[valid]) ** 2, axis=0))
    else:
        valid_error = np.full(T.shape[1] if T.ndim > 1 else 1, np.nan)
    full = fit_quadratic(X[near], T[near], chosen=model.kinds)
    full.valid_error = valid_error
    return full
