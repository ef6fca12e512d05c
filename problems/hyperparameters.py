"""Hyper-parameter tuning: the leader picks ridge penalties, the follower fits the weights.

The story
---------
A small regression data set has six standardised features: the first three carry signal, the last three mostly
noise. Ridge regression with one penalty per feature group should shrink the noisy group hard and the useful
group lightly; the penalties are chosen by the error on a held-out validation set. That is a bilevel problem: the
model's weights are not free variables of the tuning problem, they are whatever minimises the penalised training
loss for the penalties chosen.

Bilevel model::

    leader    x = (log10 lambda_1, log10 lambda_2)   in [-4, 2]^2
              F(x, y) = mean((A_val y - b_val)^2)                        validation error
    follower  y = w (the weights)                    in [-5, 5]^6
              f(x, y) = mean((A_train y - b_train)^2) + lambda_1 |w_1:3|^2 + lambda_2 |w_4:6|^2

``make_problem(ul_dim=2, ll_dim=6)`` builds it; ``ul_dim=1`` uses one penalty for all weights, and ``ll_dim``
(2 to 6) keeps the first ``ll_dim`` features (the second group then holds the features after the third). The data
(20 training and 40 validation rows, noise of standard deviation 1.5, features correlated 0.3 pairwise) come from
a seeded generator inside this file, so the functions are deterministic.

What a good answer looks like (default sizes)
---------------------------------------------
``log10 lambda ~ (-0.33, 0.23)``: a lighter penalty on the useful group than on the noisy one, with a validation
error ``F ~ 1.7289``, against 3.061 for unpenalised least squares and 1.9764 for the best single penalty
(``ul_dim=1``: ``log10 lambda ~ -0.206``).

How the reference was established: for given penalties the follower's problem is a ridge regression with the
closed-form solution ``w = (A'A / n + diag(lambda)) \\ (A'b / n)``. A 601 x 601 grid over both log-penalties
with that exact response, polished by Nelder-Mead, gives ``F* = 1.728916`` at ``x = (-0.3262, 0.2335)``;
``tests/test_problems.py`` repeats it independently.
"""

from __future__ import annotations

import numpy as np

import evobilevel as eb

N_TRAIN = 20
N_VALIDATION = 40
TRUE_WEIGHTS = np.array([1.2, -0.8, 0.5, 0.25, -0.15, 0.0])  # three useful features, three weak or useless ones
NOISE = 1.5
FEATURE_CORRELATION = 0.3  # every pair of features


def make_data(seed: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training and validation sets, standardised with the training set's mean and spread.

    Returns
    -------
    A_train : ndarray, shape (N_TRAIN, 6)
    b_train : ndarray, shape (N_TRAIN,)
    A_val : ndarray, shape (N_VALIDATION, 6)
    b_val : ndarray, shape (N_VALIDATION,)
    """
    rng = np.random.default_rng(seed)
    n = N_TRAIN + N_VALIDATION
    cov = np.full((6, 6), FEATURE_CORRELATION) + (1 - FEATURE_CORRELATION) * np.eye(6)
    A = rng.standard_normal((n, 6)) @ np.linalg.cholesky(cov).T
    b = A @ TRUE_WEIGHTS + NOISE * rng.standard_normal(n)
    mean, sd = A[:N_TRAIN].mean(axis=0), A[:N_TRAIN].std(axis=0)
    A = (A - mean) / sd
    # Centred targets: the model needs no intercept, so every follower variable is a penalised weight.
    b = b - b[:N_TRAIN].mean()
    return A[:N_TRAIN], b[:N_TRAIN], A[N_TRAIN:], b[N_TRAIN:]


A_TRAIN, B_TRAIN, A_VAL, B_VAL = make_data()


def penalty_groups(ul_dim: int, ll_dim: int) -> np.ndarray:
    """Which penalty applies to each weight: an int array of shape (ll_dim,) with values in ``range(ul_dim)``."""
    group = (np.arange(ll_dim) >= 3).astype(int)
    return group if ul_dim == 2 else np.zeros(ll_dim, dtype=int)


def make_problem(ul_dim: int = 2, ll_dim: int = 6) -> eb.Problem:
    """The tuning problem with ``ul_dim`` penalties (1 or 2) and ``ll_dim`` features (2 to 6).

    Returns
    -------
    evobilevel.Problem
        Vectorised; ``x`` are base-10 logarithms of the penalties, ``y`` the weights.
    """
    if ul_dim not in (1, 2):
        raise ValueError(f"hyperparameters: ul_dim must be 1 or 2 (penalties), got {ul_dim}")
    if not 2 <= ll_dim <= 6:
        raise ValueError(f"hyperparameters: ll_dim must be between 2 and 6 (features), got {ll_dim}")
    A_train, A_val = A_TRAIN[:, :ll_dim], A_VAL[:, :ll_dim]
    group = penalty_groups(ul_dim, ll_dim)

    def upper(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """F(X, Y): validation mean squared error of the weights Y (n, ll_dim) -> (n,)."""
        return ((Y @ A_val.T - B_VAL) ** 2).mean(axis=1)

    def lower(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """f(X, Y): penalised training loss; X (n, ul_dim) log10-penalties, Y (n, ll_dim) weights -> (n,)."""
        penalty = 10.0 ** X[:, group]  # (n, ll_dim): each weight's penalty
        return ((Y @ A_train.T - B_TRAIN) ** 2).mean(axis=1) + (penalty * Y**2).sum(axis=1)

    return eb.Problem(
        upper,
        lower,
        ul_bounds=([-4.0] * ul_dim, [2.0] * ul_dim),
        ll_bounds=([-5.0] * ll_dim, [5.0] * ll_dim),
        vectorized=True,
        name="ridge-hyperparameters",
    )
