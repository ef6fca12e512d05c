"""The follower's response as BLEAQ models it: psi (x -> y*) and phi (x -> f*), local quadratic models fitted on
the archive of lower-level optima, and how far each prediction can be trusted."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...blas import single_blas_thread
from ...space import widths
from ...surrogates import fit_local, n_coefficients
from ..archive import SolutionArchive

__all__ = ["Predictions", "ResponseModel"]

#: A refined lower-level value counts as a local optimum when it lies more than this many held-out errors of phi
#: above phi's prediction (besides ``refine_tol``): phi's own error must not send optimal answers to a global search.
PHI_ERROR_MARGIN = 3


@dataclass
class Predictions:
    """psi/phi predictions for n upper-level points.

    Attributes
    ----------
    Y : ndarray, shape (n, ll_dim)
        psi(x), clipped into the lower-level bounds.
    phi : ndarray, shape (n,)
        phi(x), the predicted optimal lower-level value.
    trusted : ndarray of bool, shape (n,)
        x lies inside the box of the model's training points and phi's held-out error is within ``accept_tol``:
        a prediction that meets phi may be accepted without a search.
    determined : ndarray of bool, shape (n, ll_dim)
        psi's held-out error is below ``psi_tol`` of the variable's range.
    f_bound : ndarray, shape (n,)
        The largest lower-level value a local search may end at and still be taken for optimal (inf outside the
        training box).
    psi_error : ndarray, shape (n, ll_dim)
        psi's held-out errors as fractions of the variables' ranges.
    """

    Y: np.ndarray
    phi: np.ndarray
    trusted: np.ndarray
    determined: np.ndarray
    f_bound: np.ndarray
    psi_error: np.ndarray


class ResponseModel:
    """Fits local psi/phi models around each query and says how far their predictions can be trusted.

    Parameters
    ----------
    ul_bounds, ll_bounds : (ndarray, ndarray)
    accept_tol : float
        phi is accurate where its held-out error is at most ``accept_tol * (1 + |phi|)``; a lower-level value
        meets phi where it is at most ``phi + accept_tol * (1 + |phi|)``.
    psi_tol : float
        A component of psi is determined where its held-out error is below this fraction of the range.
    refine_tol : float
        Slack, relative to ``1 + |phi|``, of the bound a refined value must meet (see :attr:`Predictions.f_bound`).
    """

    def __init__(self, ul_bounds, ll_bounds, accept_tol: float, psi_tol: float, refine_tol: float):
        d = ul_bounds[0].shape[0]
        # Points for one local model: enough for the full quadratic in x plus slack for the selection of its
        # form, and d more held out to measure its error.
        self.n_train = n_coefficients(d, "quadratic") + 2 * d
        self.n_valid = d
        self.x_widths = widths(ul_bounds)  # distances in x are measured in the unit box
        self.ll_bounds = ll_bounds
        self.y_widths = widths(ll_bounds)
        self.accept_tol, self.psi_tol, self.refine_tol = accept_tol, psi_tol, refine_tol

    def meets_phi(self, f: np.ndarray, phi: np.ndarray) -> np.ndarray:
        """Whether lower-level values f (n,) are optimal by phi's predictions phi (n,), to ``accept_tol``: since
        ``f(x, y) >= f*(x)`` for every feasible y, meeting an accurate phi proves y near-optimal."""
        return f <= self.phi_bound(phi)

    def phi_bound(self, phi: np.ndarray) -> np.ndarray:
        """The largest lower-level values (n,) that meet phi's predictions phi (n,) (see :meth:`meets_phi`)."""
        return phi + self.accept_tol * (1 + np.abs(phi))

    def predict(self, archive: SolutionArchive, X: np.ndarray, rng: np.random.Generator) -> Predictions | None:
        """Predictions for the rows of X (n, ul_dim), or None while the archive is too small to fit a model."""
        if archive.size < self.n_train + self.n_valid:
            return None
        lo_y, hi_y = self.ll_bounds
        n, m = X.shape[0], lo_y.shape[0]
        out = Predictions(Y=np.full((n, m), np.nan), phi=np.full(n, np.nan), trusted=np.zeros(n, bool),
                          determined=np.zeros((n, m), bool), f_bound=np.full(n, np.inf),
                          psi_error=np.full((n, m), np.inf))
        y_tol = self.psi_tol * (hi_y - lo_y)
        T = np.hstack([archive.Y, archive.f[:, None]])
        with single_blas_thread():  # once for all the rows' fits (each fit would enter it again)
            models = [fit_local(archive.X, T, x, self.n_train, self.n_valid, rng, self.x_widths) for x in X]
        for i, model in enumerate(models):
            t = model.predict(X[i])[0]
            out.Y[i] = np.clip(t[:m], lo_y, hi_y)
            out.phi[i] = t[m]
            tol = self.accept_tol * (1 + abs(t[m]))
            inside = bool(model.inside(X[i])[0])
            out.trusted[i] = inside and model.valid_error[m] <= tol
            out.determined[i] = model.valid_error[:m] <= y_tol
            out.psi_error[i] = model.valid_error[:m] / self.y_widths
            if inside and np.isfinite(model.valid_error[m]):
                out.f_bound[i] = t[m] + PHI_ERROR_MARGIN * model.valid_error[m] + self.refine_tol * (1 + abs(t[m]))
        return out
