"""Supply chain: a manufacturer sets its retailers' wholesale prices and how many units to build; three retailers
order whole units.

The story
---------
Before the season a manufacturer builds ``K`` units of a product (a whole number) at a cost of ``c = 4`` each and
sets a wholesale price ``w_i`` for each of its three retailers. Retailer i then orders ``q_i`` whole units at
``w_i``, sells them at its own retail price ``p_i`` while its demand lasts and clears what is left at ``s_i`` (a
newsvendor). The retailers decide independently, each knowing only its own price and market. The manufacturer must
deliver every order from what it built (``q_1 + q_2 + q_3 <= K``) and sells what is left in its own outlet at
``p_o = 7`` while the outlet's demand lasts, scrapping the rest for ``s_o = 1``.

Bilevel model with three followers (every level minimises the negative of its expected profit)::

    leader        x = (w_1, w_2, w_3, K)   in [4, 16]^3 x {0, ..., 600}      (K integer)
                  F(x, y) = -( sum_i w_i q_i + E[p_o min(L, D_o) + s_o (L - D_o)^+] - c K ),  L = K - sum_i q_i
                  subject to  G(x, y) = q_1 + q_2 + q_3 - K <= 0
    follower i    y_i = q_i                 in {0, ..., 250}                    (integer)
                  f_i(x, q_i) = -E[p_i min(q_i, D_i) + s_i (q_i - D_i)^+ - w_i q_i]

Demand is simulated over ``N_SCENARIOS = 200`` market scenarios: correlated log-normal market sizes (means 100, 70
and 60 units for the retailers, 50 for the outlet), drawn once from a generator with a fixed seed when this file is
imported. Within a scenario, demand is normal around its market size (standard deviation 20 % of it) and the
expected sales of a stock ``q`` are computed exactly (conditional Monte Carlo). Every evaluation sees the same
scenarios (common random numbers), so ``F`` and every ``f_i`` are deterministic and two decisions are compared on
the same demand. Replace :func:`expected_revenue` and :func:`outlet_profit` by your own simulator to solve your own
case.

What a good answer looks like
-----------------------------
``w ~ (10.48, 13.62, 8.85)``, ``K = 198``: the retailers order ``q = (65, 49, 38)`` units, 46 units go to the
outlet, and the manufacturer earns ``-F ~ 1177.54`` a season. The wholesale prices sit just where each retailer is
indifferent between its order and one unit less (a little higher and it orders one unit less): the manufacturer
takes as much of each retailer's margin as it can (double marginalisation), and the retailers order well below what
they expect to sell at cost.

How the reference was established: the leader's problem separates. Retailer i orders the largest ``q`` whose last
unit is worth its price, ``R_i(q) - R_i(q - 1) >= w_i`` (``R_i`` its expected revenue of a stock ``q``, concave),
so the best price that sells it ``q`` units is that marginal worth ``R_i(q) - R_i(q - 1)`` (within the price
bounds), and the manufacturer's gain from it is ``(w_i - c) q``: an enumeration of ``q = 0, ..., 250`` gives each
retailer's best. What the manufacturer builds beyond the orders, ``L = K - sum q_i``, only feeds the outlet; an
enumeration of ``L`` gives its best. ``tests/test_problems.py`` repeats that computation: ``F* = -1177.541``.
Near the optimum the leader's landscape is a staircase (each retailer's order drops by a unit at its step's edge),
and neighbouring steps are worth almost the same: retailer 2's 48 units at ``w_2 = 13.80`` give the manufacturer
``470.5``, its 49 units at ``13.62`` give ``471.1``. ``evobilevel solve problems/supply_chain.py --max-ul-evals
800`` ends 0.14-0.25 % above ``F*`` (seeds 0-4).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from scipy.special import ndtr

import evobilevel as eb

RETAIL_PRICE = np.array([12.0, 16.0, 10.0])  # p_i, each retailer's selling price
RETAIL_SALVAGE = np.array([3.0, 4.0, 2.0])  # s_i, end-of-season clearance price at each retailer
BUILD_COST = 4.0  # c, manufacturer's cost per unit built
OUTLET_PRICE = 7.0  # p_o, manufacturer's outlet price
OUTLET_SALVAGE = 1.0  # s_o, scrap value of a unit nobody bought
MAX_ORDER = 250  # units a retailer can order at most
MAX_BUILD = 600  # units the manufacturer can build at most

N_SCENARIOS = 200
MARKET_MEAN = np.array([100.0, 70.0, 60.0, 50.0])  # retailers 1, 2, 3, outlet
MARKET_CV = np.array([0.3, 0.3, 0.35, 0.4])
MARKET_CORRELATION = np.array([[1.0, 0.4, 0.3, 0.2], [0.4, 1.0, 0.3, 0.2], [0.3, 0.3, 1.0, 0.2],
                               [0.2, 0.2, 0.2, 1.0]])
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
    M : ndarray, shape (n_scenarios, 4)
        Columns: retailers 1, 2 and 3, outlet; means :data:`MARKET_MEAN`.
    """
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(np.log1p(MARKET_CV**2))
    mu = np.log(MARKET_MEAN) - sigma**2 / 2
    Z = rng.standard_normal((n_scenarios, 4)) @ np.linalg.cholesky(MARKET_CORRELATION).T
    return np.exp(mu + sigma * Z)


# Drawn once: every evaluation averages over these same scenarios (common random numbers).
SCENARIOS = market_scenarios()


def expected_sales(q: np.ndarray, market: np.ndarray) -> np.ndarray:
    """Expected sales ``E[min(q, D)]`` of stocks ``q`` (n,) when demand is ``D ~ Normal(m, (WITHIN_CV m)^2)`` in
    each scenario of one market, ``market`` (N,) its sizes; averaged over the scenarios: shape (n,).

    ``m - sd * L((q - m) / sd)`` per scenario, with the standard normal loss function
    ``L(z) = phi(z) - z (1 - Phi(z))``.
    """
    sd = WITHIN_CV * market[None, :]
    z = (q[:, None] - market[None, :]) / sd
    loss = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) - z * ndtr(-z)
    return (market[None, :] - sd * loss).mean(axis=1)


def expected_revenue(i: int, q: np.ndarray) -> np.ndarray:
    """Retailer i's expected revenue ``R_i(q)`` (n,) from a stock of ``q`` (n,) units: sales at ``p_i``, the rest
    cleared at ``s_i``."""
    sold = expected_sales(q, SCENARIOS[:, i])
    return RETAIL_PRICE[i] * sold + RETAIL_SALVAGE[i] * (q - sold)


def outlet_profit(left: np.ndarray) -> np.ndarray:
    """The outlet's expected revenue (n,) from ``left`` (n,) units: sales at ``p_o``, the rest scrapped at ``s_o``."""
    sold = expected_sales(left, SCENARIOS[:, 3])
    return OUTLET_PRICE * sold + OUTLET_SALVAGE * (left - sold)


def upper(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """F(X, Y): the manufacturer's negative expected profit; X (n, 4) = (w_1, w_2, w_3, K), Y (n, 3) = orders."""
    W, K = X[:, :3], X[:, 3]
    left = np.maximum(K - Y.sum(axis=1), 0.0)  # orders beyond K violate G; the outlet then has nothing
    return -((W * Y).sum(axis=1) + outlet_profit(left) - BUILD_COST * K)


def upper_constraints(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """G(X, Y) (n, 1): orders beyond what was built, ``q_1 + q_2 + q_3 - K <= 0``."""
    return (Y.sum(axis=1) - X[:, 3])[:, None]


def retailer(i: int, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """f_i(X, Y_i): retailer i's negative expected profit; X (n, 4), Y_i (n, 1) = its order."""
    q = Y[:, 0]
    return -(expected_revenue(i, q) - X[:, i] * q)


problem = eb.Problem(
    upper,
    followers=[
        eb.Follower(partial(retailer, i), bounds=([0.0], [float(MAX_ORDER)]), integrality=True,
                    name=f"retailer {i + 1}")
        for i in range(3)
    ],
    ul_bounds=([4.0, 4.0, 4.0, 0.0], [16.0, 16.0, 16.0, float(MAX_BUILD)]),
    upper_constraints=upper_constraints,
    n_ul_constraints=1,
    ul_integrality=[False, False, False, True],
    vectorized=True,
    name="supply-chain",
)
