"""problems/: every file solves from Python and from the command line, and its answer matches a reference.

The references are computed here, independently of the solver: for each problem the follower's exact answer
``y*(x)`` (a closed form, or an exact finite procedure such as enumerating the active constraints of a quadratic
programme), put into a grid over the leader's variables, whose best point is then polished by a local method on
the exact response. Each test then judges the solver's answer the way a user would:

- ``F(x, y*(x))``, the leader's outcome at the solver's ``x`` when the follower answers exactly, is within
  ``tol_F`` of the reference optimum ``F*`` (and not below it by more than the reference's own accuracy);
- the ``F`` reported with the solver's own follower answer is within ``tol_ll`` of that exact outcome: a
  follower solved to a small optimality gap can shift ``F`` by roughly ``sqrt(gap)`` times ``F``'s sensitivity to
  ``y``, so ``tol_ll`` is looser than ``tol_F`` where ``f`` is flat near its minimum.

Runs end by the solver's own stopping rule, with no evaluation budget, from Python and on the command line alike
(the same seed then gives the same answer).
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

import evobilevel as eb
from evobilevel.loading import load_problem

PROBLEMS_DIR = Path(__file__).resolve().parents[1] / "problems"


def load(name: str):
    """The problem defined by ``problems/<name>.py`` and the module it was loaded from."""
    path = PROBLEMS_DIR / f"{name}.py"
    problem = load_problem(str(path))
    return problem, sys.modules["evobilevel_problem_" + name]


def grid(lo, hi, n_points: int) -> np.ndarray:
    """A regular grid over the box ``[lo, hi]``, ``n_points`` per axis, as rows (n_points ** dim, dim)."""
    axes = [np.linspace(a, b, n_points) for a, b in zip(lo, hi)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))


# ---------------------------------------------------------------- exact follower answers
def supply_chain_response(m, X: np.ndarray) -> np.ndarray:
    """Exact orders (n, 3) for X (n, 4) = (w_1, w_2, w_3, K).

    Retailer i's expected revenue ``R_i(q)`` is concave in its stock, so it orders the largest whole ``q`` whose
    last unit is worth its price: ``R_i(q) - R_i(q - 1) >= w_i``, found among ``q = 0, ..., 250`` (where the last
    unit is worth exactly the price the retailer is indifferent, and the larger order is the one the manufacturer
    prefers).
    """
    return np.column_stack([_orders(m, i, X[:, i]) for i in range(3)])


def _orders(m, i: int, w: np.ndarray) -> np.ndarray:
    worth = _unit_worth(m, i)  # worth[q] = R_i(q) - R_i(q - 1), worth[0] = inf
    return np.array([np.flatnonzero(worth >= wi).max() for wi in w], dtype=float)


@cache
def _unit_worth(m, i: int) -> np.ndarray:
    q = np.arange(0.0, m.MAX_ORDER + 1.0)
    return np.r_[np.inf, np.diff(m.expected_revenue(i, q))]


def supply_chain_reference(m) -> tuple[np.ndarray, float]:
    """The manufacturer's optimum by enumeration: the problem separates into one price per retailer and the units
    for the outlet.

    For a retailer, the best price that sells it ``q`` units is the worth of its last unit (capped by the price
    bounds; at a lower price it would order no more), and the manufacturer's gain is ``(w - c) q``: every ``q`` is
    tried. The units built beyond the orders, ``L = K - sum q``, only feed the outlet, worth ``outlet(L) - c L``:
    every ``L`` is tried.
    """
    lo, hi = 4.0, 16.0
    x, orders, gain = np.zeros(4), 0, 0.0
    for i in range(3):
        worth = _unit_worth(m, i)
        prices = np.clip(worth[1:], lo, hi)  # the price that sells q = 1, 2, ... units
        q = _orders(m, i, prices)
        value = (prices - m.BUILD_COST) * q
        best = int(np.argmax(value))
        x[i], orders, gain = prices[best], orders + int(q[best]), gain + value[best]
    L = np.arange(0.0, m.MAX_BUILD - orders + 1.0)
    outlet = m.outlet_profit(L) - m.BUILD_COST * L
    x[3] = orders + int(np.argmax(outlet))
    return x, -(gain + outlet.max())


def tolls_response(m, X: np.ndarray) -> np.ndarray:
    """Exact route flows y (n, 3) for tolls X (n, 2): the Wardrop equilibrium of affine link costs.

    Beckmann's potential is quadratic in the route flows ``h``; for a guessed set of used routes, "equal cost on
    used routes, total = demand" is one linear system, and the guess is right when its flows are non-negative and
    no unused route is cheaper. All 15 guesses are tried.
    """
    A = m.ROUTE_LINKS  # (routes, links)
    H = m.VALUE_OF_TIME * (A * m.SLOPE) @ A.T
    tolls = np.zeros((len(X), A.shape[1]))
    tolls[:, m.TOLLED_LINKS] = X
    c = (m.VALUE_OF_TIME * m.FREE_FLOW + tolls) @ A.T  # (n, routes): linear term of the potential
    h_all = np.full((len(X), 4), np.nan)
    found = np.zeros(len(X), bool)
    for k in range(1, 5):
        for used in itertools.combinations(range(4), k):
            used = list(used)
            K = np.zeros((k + 1, k + 1))
            K[:k, :k], K[:k, k], K[k, :k] = H[np.ix_(used, used)], -1.0, 1.0
            rhs = np.column_stack([-c[:, used], np.full(len(X), m.DEMAND)])
            sol = np.linalg.solve(K, rhs.T).T
            h = np.zeros((len(X), 4))
            h[:, used] = sol[:, :k]
            cost = h @ H + c
            ok = ~found & (h >= -1e-12).all(axis=1) & (cost >= sol[:, k : k + 1] - 1e-9).all(axis=1)
            h_all[ok], found = h[ok], found | ok
    assert found.all()
    return h_all[:, :3]


def ridge_response(m, X: np.ndarray) -> np.ndarray:
    """Exact ridge weights (n, 6) for log10-penalties X (n, 2): ``(A'A / n + diag(lambda)) w = A'b / n``."""
    A, b = m.A_TRAIN, m.B_TRAIN
    lam = 10.0 ** X[:, m.penalty_groups(2, 6)]
    lhs = A.T @ A / len(b) + lam[:, :, None] * np.eye(6)
    return np.linalg.solve(lhs, np.broadcast_to(A.T @ b / len(b), (len(X), 6))[..., None])[..., 0]


def airline_response(m, X: np.ndarray) -> np.ndarray:
    """Exact bookings (n, 3) for fares X (n, 2): KKT of a strictly convex QP with 5 linear constraints.

    The constraints ``A q <= b`` are the budget, the premium policy and ``q >= 0`` (the upper bounds of 20 are
    never reached). For each set of at most 3 active constraints the KKT system is linear; the answer is the
    solution that is feasible with non-negative multipliers (unique, by strict convexity).
    """
    n, P = len(X), m.fares(X)
    A, b = np.zeros((n, 5, 3)), np.zeros((n, 5))
    A[:, 0], b[:, 0] = P, m.BUDGET
    A[:, 1] = [-m.PREMIUM_SHARE, 1 - m.PREMIUM_SHARE, -m.PREMIUM_SHARE]
    A[:, 2:] = -np.eye(3)
    c = P - m.VALUE  # f = c'q + q'Bq / 2
    Q, found = np.full((n, 3), np.nan), np.zeros(n, bool)
    for k in range(4):
        for active in itertools.combinations(range(5), k):
            active = list(active)
            K = np.zeros((n, 3 + k, 3 + k))
            K[:, :3, :3] = m.SUBSTITUTION
            K[:, :3, 3:] = A[:, active].transpose(0, 2, 1)
            K[:, 3:, :3] = A[:, active]
            regular = np.abs(np.linalg.det(K)) > 1e-12  # e.g. a zero fare makes the budget row degenerate
            sol = np.full((n, 3 + k), np.nan)
            rhs = np.column_stack([-c, b[:, active]])
            sol[regular] = np.linalg.solve(K[regular], rhs[regular][..., None])[..., 0]
            q, multipliers = sol[:, :3], sol[:, 3:]
            with np.errstate(invalid="ignore"):
                feasible = (np.einsum("nij,nj->ni", A, q) - b <= 1e-9).all(axis=1)
                ok = ~found & regular & feasible & (multipliers >= -1e-12).all(axis=1)
            Q[ok], found = q[ok], found | ok
    assert found.all()
    return Q


# ---------------------------------------------------------------- references
@dataclass(frozen=True)
class Case:
    """A problem file, its exact follower answer, the reference search and the tolerances of the comparison."""

    name: str
    response: object  # (module, X (n, ul_dim)) -> Y (n, ll_dim)
    n_grid: int  # grid points per leader variable (0: the reference is computed otherwise)
    tol_F: float
    tol_ll: float
    tol_ref: float


CASES = {
    # F ~ -1177.5 (a season's profit). Each price's best value sits at the top of a step (a hair higher and the
    # retailer orders a unit less), which the leader approaches from below, and neighbouring steps are worth almost
    # the same (retailer 2's 48 units at 13.80 give 470.5, its 49 at 13.62 give 471.1): a run ends a few units above
    # F* (seed 0: 0.85, 0.07 %). The followers' answers are whole numbers, exact at the solver's prices.
    "supply_chain": Case("supply_chain", supply_chain_response, 0, tol_F=5.0, tol_ll=1e-9, tol_ref=1e-9),
    # F ~ -15.28 (revenue). Near its optimum the revenue is flat: 1e-3 (0.007 %) in F is ~0.02 EUR in the tolls.
    # A follower gap of 1e-4 shifts route flows by ~0.02 and F by ~0.1.
    "tolls": Case("tolls", tolls_response, 101, tol_F=1e-3, tol_ll=0.15, tol_ref=1e-6),
    # F ~ 1.729 (validation MSE). The noise in the data alone moves it by far more than 1e-4, the tolerance.
    "hyperparameters": Case("hyperparameters", ridge_response, 121, tol_F=1e-4, tol_ll=1e-4, tol_ref=1e-8),
    # F ~ -13.7. The optimum sits where the follower's constraints become active (a kink of y*(x)), which the
    # solver approaches more slowly: 0.01 (0.07 %) in F. The seat constraint may be violated by 1e-3 with the exact
    # follower answer (the solver's own answer is feasible), which is worth up to ~0.01 in F.
    "airline_fares": Case("airline_fares", airline_response, 151, tol_F=0.01, tol_ll=0.05, tol_ref=0.01),
}


def exact_outcome(case: Case, problem, module, X: np.ndarray):
    """Leader's objective and constraints with the exact follower answer: F (n,), G (n, m), Y* (n, ll_dim)."""
    Y = case.response(module, X)
    F, G = problem.upper(X, Y)
    return F, G, Y


@cache
def reference(name: str) -> tuple[np.ndarray, float]:
    """The reference leader's optimum ``(x*, F*)`` of ``problems/<name>.py``: best grid point, then polished."""
    case = CASES[name]
    problem, module = load(name)
    if name == "supply_chain":
        return supply_chain_reference(module)
    lo, hi = problem.ul_bounds
    X = grid(lo, hi, case.n_grid)
    F = np.concatenate([_feasible_F(case, problem, module, chunk) for chunk in np.array_split(X, 20)])
    x0 = X[np.argmin(F)]

    def objective(x):
        return float(_feasible_F(case, problem, module, np.clip(x, lo, hi)[None, :])[0])

    if problem.n_ul_constraints:
        # The optimum lies on a constraint, where F is not stationary: zoom in on the best feasible grid point
        # (each round a 31 x 31 grid over +-3 cells of the last one, so 10x finer).
        x_best, step = x0, (hi - lo) / (case.n_grid - 1)
        for _ in range(8):
            a, b = np.maximum(x_best - 3 * step, lo), np.minimum(x_best + 3 * step, hi)
            X = grid(a, b, 31)
            x_best, step = X[np.argmin(_feasible_F(case, problem, module, X))], (b - a) / 30
    else:
        x_best = minimize(objective, x0, method="Nelder-Mead",
                          options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000}).x
    F_best = objective(x_best)
    assert np.isfinite(F_best) and F_best <= F.min() + 1e-12
    return np.clip(x_best, lo, hi), F_best


def _feasible_F(case: Case, problem, module, X: np.ndarray) -> np.ndarray:
    F, G, _ = exact_outcome(case, problem, module, X)
    return np.where((G <= 1e-9).all(axis=1), F, np.inf)


# ---------------------------------------------------------------- tests
def test_every_problem_file_is_covered():
    files = sorted(p.stem for p in PROBLEMS_DIR.glob("*.py") if not p.name.startswith("_"))
    assert files == sorted(CASES)


def test_problem_files_cover_the_promised_features():
    problems = {name: load(name)[0] for name in CASES}
    assert all(p.ul_dim <= 4 and p.ll_dim <= 6 for p in problems.values())
    assert any(not p.vectorized for p in problems.values()) and any(p.vectorized for p in problems.values())
    assert any(p.n_ul_constraints and p.n_ll_constraints for p in problems.values())
    for name in CASES:
        doc = load(name)[1].__doc__
        assert "What a good answer looks like" in doc and "How the reference was established" in doc, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_problem_solves_from_python_and_cli_to_the_reference(name, tmp_path):
    case = CASES[name]
    problem, module = load(name)
    out = tmp_path / "run.json"
    # The command line runs in a second process meanwhile: same seed, hence the same answer, provided
    # both use one BLAS thread (a matrix product's last bits, and so the search's path, depend on the number of
    # threads; an earlier test may have set the *_NUM_THREADS variables that a child process would inherit).
    env = {**os.environ, **{f"{lib}_NUM_THREADS": "1" for lib in ("OMP", "OPENBLAS", "MKL")}}
    cli = subprocess.Popen(
        [sys.executable, "-m", "evobilevel.cli", "solve", str(PROBLEMS_DIR / f"{name}.py"), "--seed", "0",
         "--out", str(out), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        with threadpool_limits(limits=1):
            r = eb.solve(problem, seed=0)
        x_ref, F_ref = reference(name)
        stdout, stderr = cli.communicate(timeout=300)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.communicate()

    # The command line printed and saved the same answer.
    assert cli.returncode == 0, stderr
    printed = re.search(r"^F, f\s+(\S+), (\S+)\s+feasible: True", stdout, re.M)
    assert printed, stdout
    assert float(printed.group(1)) == pytest.approx(r.F, rel=1e-7, abs=1e-12)
    saved = eb.load_result(out)
    assert np.array_equal(saved.x, r.x) and saved.F == r.F and saved.n_ul_evals == r.n_ul_evals

    # The answer is feasible and the follower's answer is (nearly) optimal.
    assert r.feasible and r.n_ul_failed == 0 and r.n_ll_failed == 0
    assert r.success, r.message  # ended by its own rule
    assert r.ll_gap is not None and r.ll_gap <= 1e-5 * (1 + abs(r.f))

    # The leader's outcome at the solver's x, with the exact follower answer, matches the reference optimum.
    F_exact, G_exact, _ = exact_outcome(case, problem, module, r.x[None, :])
    F_exact = float(F_exact[0])
    assert (G_exact <= 1e-3).all(), G_exact
    assert F_exact <= F_ref + case.tol_F, (r.x, F_exact, x_ref, F_ref)
    assert F_exact >= F_ref - case.tol_ref, "the solver beat the reference: the reference is wrong"
    assert abs(r.F - F_exact) <= case.tol_ll, (r.F, F_exact)
