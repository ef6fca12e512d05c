"""Supply chain: a manufacturer sets wholesale prices and its production capacity; a retailer orders.

The story
---------
Before the season a manufacturer builds ``K`` units of a product that comes in two variants, at a cost of
``c = 4`` per unit. A retailer orders ``q_1`` and ``q_2`` units of the variants at the wholesale prices ``w_1`` and
``w_2`` the manufacturer sets, sells them at the retail prices ``p = (12, 16)`` while demand lasts, and clears
what is left at ``s = (3, 4)`` (a newsvendor). Whatever the retailer does not order goes to the manufacturer's own
outlet, which sells it at ``p_o = 7`` while the outlet's demand lasts and scraps the rest for ``s_o = 1``.

Bilevel model (both levels minimise the negative of their expected profit)::

    leader    x = (w_1, w_2, K)   in [4, 12] x [4, 16] x [0, 600]
              F(x, y) = -( sum_i w_i q_i + E[p_o min(K - q_1 - q_2, D_o) + s_o (K - q_1 - q_2 - D_o)^+] - c K )
    follower  y = (q_1, q_2)      in [0, 300]^2
              f(x, y) = -sum_i E[p_i min(q_i, D_i) + s_i (q_i - D_i)^+ - w_i q_i]
              subject to  g(x, y) = q_1 + q_2 - K <= 0      (the retailer cannot order more than was built)

Demand is simulated over ``N_SCENARIOS = 200`` market scenarios: correlated log-normal market sizes (means
100, 70 and 60 units), drawn once from a seeded generator when this file is imported. Within a scenario, demand
is normal around its market size (standard deviation 20 % of it) and the expected sales of a stock ``q`` are
computed exactly (conditional Monte Carlo), which keeps the costs smooth in the decisions. Every evaluation sees
the same scenarios (common random numbers), so ``F`` and ``f`` are deterministic and two candidate decisions are
compared on the same demand. Replace :func:`simulate_retailer` and :func:`simulate_manufacturer` by your own
simulator to solve your own case.

What a good answer looks like
-----------------------------
``w ~ (10.39, 13.72)``, ``K ~ 168.1``: the retailer orders ``q ~ (65.2, 49.4)``, the manufacturer keeps about 53
units for its outlet (the capacity constraint is not binding) and earns ``-F ~ 1014.35`` a season; the retailer
earns ``-f ~ 180.2``. The wholesale prices are high (double marginalisation): the retailer orders the newsvendor
quantities of its critical ratios ``(p_i - w_i) / (p_i - s_i)``, well below the mean demand.

How the reference was established: with the orders below capacity the retailer's problem separates into two
newsvendors, each ordering the ``(p_i - w_i) / (p_i - s_i)`` quantile of its scenario-mixture demand (an exact,
monotone inversion); when the capacity binds, a bisection on its shadow price splits it. A grid over
``(w_1, w_2, K)`` with this exact lower-level response, polished by Nelder-Mead, gives ``F* = -1014.3545`` at
``x = (10.3928, 13.7184, 168.054)``; ``tests/test_problems.py`` repeats that computation independently.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr

import evobilevel as eb

RETAIL_PRICE = np.array([12.0, 16.0])  # p_i, retailer's selling price per variant
RETAIL_SALVAGE = np.array([3.0, 4.0])  # s_i, end-of-season clearance price at the retailer
BUILD_COST = 4.0  # c, manufacturer's cost per unit of capacity built
OUTLET_PRICE = 7.0  # p_o, manufacturer's outlet price
OUTLET_SALVAGE = 1.0  # s_o, scrap value of a unit nobody bought

N_SCENARIOS = 200
MARKET_MEAN = np.array([100.0, 70.0, 60.0])  # retailer variant 1, variant 2, outlet
MARKET_CV = np.array([0.3, 0.3, 0.4])
MARKET_CORRELATION = np.array([[1.0, 0.4, 0.2], [0.4, 1.0, 0.2], [0.2, 0.2, 1.0]])
WITHIN_CV = 0.2  # spread of the demand around a scenario's market size


def market_scenarios(n_scenarios: int = N_SCENARIOS, seed: int = 20240611) -> np.ndarray:
    """Correlated log-normal market sizes, one row per scenario.

    Parameters
    ----------
    n_scenarios : int
    seed : int
        Seed of the generator; the module-level :data:`SCENARIOS` uses the default, once.

    Returns
    -------
    M : ndarray, shape (n_scenarios, 3)
        Columns: retailer variant 1 and 2, outlet; means :data:`MARKET_MEAN`.
    """
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(MARKET_CV**2))
    mu = np.log(MARKET_MEAN) - sigma**2 / 2
    Z = rng.standard_normal((n_scenarios, 3)) @ np.linalg.cholesky(MARKET_CORRELATION).T
    return np.exp(mu + sigma * Z)


# Drawn once: every evaluation of F and f averages over these same scenarios (common random numbers).
SCENARIOS = market_scenarios()


def expected_sales(Q: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Expected sales ``E[min(q, D)]`` of a stock ``q`` when demand is ``D ~ Normal(m, (WITHIN_CV m)^2)``.

    Parameters
    ----------
    Q : ndarray, shape (n, 1, k)
        Stock levels.
    M : ndarray, shape (1, N, k)
        Market sizes of the scenarios.

    Returns
    -------
    ndarray, shape (n, N, k)
        ``m - sd * L((q - m) / sd)`` with the standard normal loss function ``L(z) = phi(z) - z (1 - Phi(z))``.
    """
    sd = WITHIN_CV * M
    z = (Q - M) / sd
    loss = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) - z * ndtr(-z)
    return M - sd * loss


def simulate_retailer(W: np.ndarray, Q: np.ndarray, scenarios: np.ndarray = SCENARIOS) -> np.ndarray:
    """The retailer's expected profit, averaged over the market scenarios.

    Parameters
    ----------
    W : ndarray, shape (n, 2)
        Wholesale prices.
    Q : ndarray, shape (n, 2)
        Order quantities.
    scenarios : ndarray, shape (N, 3)

    Returns
    -------
    profit : ndarray, shape (n,)
    """
    sold = expected_sales(Q[:, None, :], scenarios[None, :, :2]).mean(axis=1)  # (n, 2)
    return (RETAIL_PRICE * sold + RETAIL_SALVAGE * (Q - sold) - W * Q).sum(axis=1)


def simulate_manufacturer(W: np.ndarray, K: np.ndarray, Q: np.ndarray, scenarios: np.ndarray = SCENARIOS):
    """The manufacturer's expected profit, averaged over the market scenarios.

    Parameters
    ----------
    W : ndarray, shape (n, 2)
        Wholesale prices.
    K : ndarray, shape (n,)
        Capacity built.
    Q : ndarray, shape (n, 2)
        The retailer's orders.
    scenarios : ndarray, shape (N, 3)

    Returns
    -------
    profit : ndarray, shape (n,)
    """
    # Orders above the capacity are infeasible for the retailer; the outlet then simply has nothing left.
    left = np.maximum(K - Q.sum(axis=1), 0.0)  # (n,)
    sold = expected_sales(left[:, None, None], scenarios[None, :, 2:]).mean(axis=(1, 2))  # (n,)
    outlet = OUTLET_PRICE * sold + OUTLET_SALVAGE * (left - sold)
    return (W * Q).sum(axis=1) + outlet - BUILD_COST * K


def upper(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """F(X, Y): the manufacturer's negative expected profit; X (n, 3) = (w_1, w_2, K), Y (n, 2) -> (n,)."""
    return -simulate_manufacturer(X[:, :2], X[:, 2], Y)


def lower(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """f(X, Y): the retailer's negative expected profit; X (n, 3), Y (n, 2) = (q_1, q_2) -> (n,)."""
    return -simulate_retailer(X[:, :2], Y)


def lower_constraints(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """g(X, Y) (n, 1): orders beyond the capacity built, ``q_1 + q_2 - K <= 0``."""
    return (Y.sum(axis=1) - X[:, 2])[:, None]


problem = eb.Problem(
    upper,
    lower,
    ul_bounds=([4.0, 4.0, 0.0], [12.0, 16.0, 600.0]),
    ll_bounds=([0.0, 0.0], [300.0, 300.0]),
    lower_constraints=lower_constraints,
    n_ll_constraints=1,
    vectorized=True,
    name="supply-chain",
)
