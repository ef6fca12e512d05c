"""Acceptance tests of the SMD and TP suites, the Problem interface and the counting evaluator.

Known optima are checked against the published values, the closed-form lower-level responses against a local
search and random sampling, and evaluation counts exactly.
"""

from __future__ import annotations

import functools
import pickle
import zlib

import numpy as np
import pytest
from scipy.optimize import linprog, minimize

import evobilevel as eb
from evobilevel.benchmarks import registry
from evobilevel.benchmarks.smd import SMD6, SMD12
from evobilevel.evaluator import Evaluator

SMD_NAMES = [f"SMD{i}" for i in range(1, 13)]
TP_NAMES = [f"TP{i}" for i in range(1, 11)]
MO_NAMES = ["BMO1", "BMO2", "BMO3"]
SIZES = [(2, 3), (5, 5), (10, 10)]

# Published optimal values, with the precision they are given to (the tolerance is half a unit of it).
SMD_EXPECTED = {
    "SMD10": {(2, 3): (4.0, 3.0), (5, 5): (12.75, 5.764719), (10, 10): (29.027778, 11.805556)},
    "SMD11": {size: (-1.0, 1.0) for size in SIZES},
    "SMD12": {(2, 3): (3.0, 4.0), (5, 5): (12.164214, 6.764719), (10, 10): (28.597179, 12.805556)},
}
SMD_TOL = 1e-6
TP_EXPECTED = {  # name: (F*, f*, tolerance)
    "TP1": (225.0, 100.0, 1e-9),
    "TP2": (0.0, 100.0, 1e-9),
    "TP3": (-18.6787, -1.0156, 1e-4),
    "TP4": (-29.2, 3.2, 1e-9),
    "TP5": (-3.6, -2.0, 1e-9),
    "TP6": (-1.209877, 7.617284, 1e-6),
    # The exact optimum (see TP7's docstring); the literature's best known -1.96146 is checked separately.
    "TP7": (-100.0 / 51.0, 100.0 / 51.0, 1e-9),
    "TP8": (0.0, 100.0, 1e-9),
    "TP9": (0.0, 1.0, 1e-9),
    "TP10": (0.0, 1.0, 1e-9),
}
WITHOUT_RESPONSE = {"SMD9", "SMD12"}
FEAS_TOL = 1e-9


def _cases():
    cases = []
    for name in SMD_NAMES:
        for ul_dim, ll_dim in SIZES:
            for variant in ("paper", "bleaq2") if name == "SMD12" else (None,):
                kwargs = {"ul_dim": ul_dim, "ll_dim": ll_dim}
                label = f"{name}-{ul_dim}+{ll_dim}"
                if variant is not None:
                    kwargs["variant"] = variant
                    label += f"-{variant}"
                cases.append(pytest.param(name, tuple(sorted(kwargs.items())), id=label))
    cases += [pytest.param(name, (), id=name) for name in TP_NAMES]
    return cases


CASES = _cases()


@functools.cache
def _problem(name, kwargs):
    return eb.benchmarks.get(name, **dict(kwargs))


def _rng(name, kwargs) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(f"{name}{kwargs}".encode()))


def _uniform(rng, bounds, n):
    lo, hi = bounds
    return lo + (hi - lo) * rng.random((n, lo.shape[0]))


def _within(points, bounds) -> bool:
    return bool(np.all(points >= bounds[0]) and np.all(points <= bounds[1]))


# ------------------------------------------------------------------------------------------ optima


@pytest.mark.parametrize("name, kwargs", CASES)
def test_optimum_values_bounds_and_feasibility(name, kwargs):
    p = _problem(name, kwargs)
    opt = p.optimum
    assert opt is not None
    if name in TP_EXPECTED:
        F_star, f_star, tol = TP_EXPECTED[name]
    else:
        size = (p.ul_dim, p.ll_dim)
        F_star, f_star = SMD_EXPECTED.get(name, {}).get(size, (0.0, 0.0))
        tol = SMD_TOL
    assert opt.F == pytest.approx(F_star, abs=tol)
    assert opt.f == pytest.approx(f_star, abs=tol)
    assert opt.x.shape == (p.ul_dim,) and opt.y.shape == (p.ll_dim,)
    assert _within(opt.x, p.ul_bounds) and _within(opt.y, p.ll_bounds)
    F, G = p.upper(opt.x, opt.y)
    f, g = p.lower(opt.x, opt.y)
    assert (F, f) == (opt.F, opt.f)
    assert G.shape == (p.n_ul_constraints,) and g.shape == (p.n_ll_constraints,)
    assert np.all(G <= FEAS_TOL) and np.all(g <= FEAS_TOL)
    Y = p.ll_response(opt.x)
    if Y is not None:  # the response at x* is an optimum of the same lower-level value
        assert p.lower(opt.x, Y)[0] == pytest.approx(opt.f, abs=1e-9)


def test_tp7_best_known_value_from_the_literature_is_close():
    # -1.96146 (He et al.) is 6.8e-4 below the exact minimum -100/51; see TP7's docstring for why.
    assert abs(_problem("TP7", ()).optimum.F - (-1.96146)) < 1e-3


@pytest.mark.parametrize("name", [n for n in TP_NAMES if n not in ("TP9", "TP10")])
def test_tp_optimum_is_not_beaten_on_an_upper_level_grid(name):
    """With the exact lower-level response, no feasible point of a grid over the upper level is better."""
    p = _problem(name, ())
    lo, hi = p.ul_bounds
    axes = [np.linspace(a, b, 2001 if p.ul_dim == 1 else 241) for a, b in zip(lo, hi, strict=True)]
    X = np.stack([a.ravel() for a in np.meshgrid(*axes, indexing="ij")], axis=1)
    Y = p.ll_response(X)
    solved = ~np.isnan(Y).any(axis=1)
    F, G = p.upper(X[solved], Y[solved])
    feasible = np.all(G <= FEAS_TOL, axis=1)
    assert feasible.any()
    assert F[feasible].min() >= p.optimum.F - 1e-9 * (1 + abs(p.optimum.F))


def test_smd12_published_optimum_is_not_the_optimistic_one():
    # At x*, another lower-level optimum that the upper level accepts has a lower F (see SMD12's docstring).
    p = SMD12(5, 5)
    x = p.optimum.x
    xu2 = x[p.split.p :]
    a = xu2[0]
    offset = np.array([a, np.sqrt(1.0 - a * a)]) * (1 + 1e-15)
    y = np.r_[p.optimum.y[: p.split.q], np.arctan(xu2 - offset)]
    F, G = p.upper(x, y)
    f, g = p.lower(x, y)
    assert np.all(G <= FEAS_TOL) and np.all(g <= FEAS_TOL)
    assert f == pytest.approx(p.optimum.f, abs=1e-9)
    assert F == pytest.approx(12.116025, abs=1e-6) and F < p.optimum.F - 0.04
    assert p.optimum.F_low == pytest.approx(F, abs=1e-12)


@pytest.mark.parametrize("sizes, F_low", [((5, 5), 12.116025), ((10, 10), 28.439800), ((2, 3), None)])
def test_smd12_upper_level_error_is_zero_between_the_optimistic_and_the_published_optimum(sizes, F_low):
    for variant in ("paper", "bleaq2"):
        o = SMD12(*sizes, variant=variant).optimum
        if F_low is None:  # one coordinate of the sphere: the published point is the only one
            assert o.F_low is None and o.ul_error(o.F + 0.5) == pytest.approx(0.5)
            continue
        assert o.F_low == pytest.approx(F_low, abs=1e-6)
        assert o.ul_error(o.F) == o.ul_error(o.F_low) == o.ul_error(0.5 * (o.F + o.F_low)) == 0.0
        assert o.ul_error(o.F + 0.02) == pytest.approx(0.02)
        assert o.ul_error(o.F_low - 0.03) == pytest.approx(0.03)
        assert o.to_dict()["F_low"] == o.F_low


def test_problems_without_a_preferred_response_measure_plain_distance():
    o = eb.benchmarks.get("SMD1", ul_dim=5, ll_dim=5).optimum
    assert o.F_low is None and "F_low" not in o.to_dict()
    assert o.ul_error(o.F - 0.25) == o.ul_error(o.F + 0.25) == pytest.approx(0.25)


@pytest.mark.parametrize(
    "sizes, q, s", [((2, 3), 0, 2), ((5, 5), 1, 2), ((10, 10), 2, 3), ((2, 5), 1, 3), ((4, 9), 3, 4)]
)
def test_smd6_split(sizes, q, s):
    p = SMD6(*sizes)
    assert (p.split.q, p.split.s) == (q, s)
    assert p.split.q + p.split.s + p.split.r == p.ll_dim


def test_smd_split_and_settings():
    p = eb.benchmarks.get("SMD1", ul_dim=5, ll_dim=5)
    assert tuple(p.split) == (3, 3, 2, 0)
    assert p.settings == {"ul_dim": 5, "ll_dim": 5}
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5, variant="bleaq2")
    assert p.settings == {"ul_dim": 5, "ll_dim": 5, "variant": "bleaq2"}
    assert p.ul_bounds[1][-1] == 1.0 and p.ll_bounds[1][-1] == pytest.approx(np.pi / 4 - 1e-5)
    p = eb.benchmarks.get("SMD12", ul_dim=5, ll_dim=5)
    assert p.settings["variant"] == "paper"
    assert p.ul_bounds[1][-1] == 14.1 and p.ll_bounds[1][-1] == pytest.approx(1.5 - 1e-5)
    assert (p.n_ul_constraints, p.n_ll_constraints) == (3 + 2 * 2, 3 + 1)
    assert (
        eb.benchmarks.get("TP6").ul_dim,
        eb.benchmarks.get("TP9").ul_dim,
        eb.benchmarks.get("TP10").ll_dim,
    ) == (
        1,
        5,
        10,
    )
    assert eb.benchmarks.get("TP9", dim=3).optimum.x.tolist() == [1.0, 1.0, 1.0]


# ----------------------------------------------------------------------------- lower-level responses


def _ll_search_starts(p, x, y_star, rng, n_starts):
    span = p.ll_bounds[1] - p.ll_bounds[0]
    starts = [
        np.clip(y_star + rng.normal(0.0, 0.05, y_star.shape) * span, *p.ll_bounds) for _ in range(n_starts)
    ]
    starts.append(_uniform(rng, p.ll_bounds, 1)[0])
    return starts


def _local_search_best(p, x, starts):
    """Lowest f of a feasible point found by scipy's local optimisers from each start."""
    X1 = x[None, :]

    def f(y):
        return p.lower(X1, y[None, :])[0][0]

    bounds = list(zip(*p.ll_bounds, strict=True))
    best = np.inf
    for y0 in starts:
        with np.errstate(all="ignore"):
            if p.n_ll_constraints:
                cons = {"type": "ineq", "fun": lambda y: -p.lower(X1, y[None, :])[1][0]}
                res = minimize(
                    f, y0, method="SLSQP", bounds=bounds, constraints=cons, options={"maxiter": 200}
                )
            else:
                res = minimize(f, y0, method="L-BFGS-B", bounds=bounds)
        y = np.clip(res.x, *p.ll_bounds)
        value, g = p.lower(X1, y[None, :])
        if np.isfinite(value[0]) and np.all(g <= FEAS_TOL):
            best = min(best, value[0])
    return best


def _sampled_best(p, x, y_star, rng, n_uniform=20000, n_near=3000):
    """Lowest f of a feasible point among uniform samples in the box and perturbations of ``y_star``."""
    span = p.ll_bounds[1] - p.ll_bounds[0]
    Y = [_uniform(rng, p.ll_bounds, n_uniform)]
    if y_star is not None:
        for scale in (1e-6, 1e-4, 1e-2):
            Y.append(
                np.clip(y_star + rng.normal(0.0, scale, (n_near // 3, y_star.shape[0])) * span, *p.ll_bounds)
            )
    Y = np.concatenate(Y)
    with np.errstate(all="ignore"):
        f, g = p.lower(np.broadcast_to(x, (len(Y), x.shape[0])), Y)
    feasible = np.all(g <= 0.0, axis=1) & np.isfinite(f)
    return f[feasible].min() if feasible.any() else np.inf


def _linear_ll_infeasible(p, x) -> bool:
    """Whether ``g(x, .) <= 0`` has no solution in the box, for g affine in y (TP3, TP4, TP6), by an LP."""
    k = p.ll_dim
    # g is affine in y: recover it from k + 1 evaluations.
    Y = np.vstack([np.zeros(k), np.eye(k)])
    g = p.lower(np.broadcast_to(x, (k + 1, x.shape[0])), Y)[1]
    b0 = g[0]
    A = (g[1:] - b0).T
    res = linprog(np.zeros(k), A_ub=A, b_ub=-b0, bounds=list(zip(*p.ll_bounds, strict=True)), method="highs")
    return res.status == 2


@pytest.mark.parametrize("name, kwargs", CASES)
def test_ll_response_is_lower_level_optimal(name, kwargs):
    p = _problem(name, kwargs)
    rng = _rng(name, kwargs)
    X = _uniform(rng, p.ul_bounds, 20)
    Y = p.ll_response(X)
    if name in WITHOUT_RESPONSE:
        assert Y is None
        return
    assert Y.shape == (20, p.ll_dim)
    assert p.ll_response(X[0]).shape == (p.ll_dim,)
    infeasible = np.isnan(Y).any(axis=1)
    if name not in ("TP3", "TP4", "TP6"):  # only these have lower levels that can be infeasible
        assert not infeasible.any()
    for i in np.flatnonzero(infeasible):
        assert np.isnan(Y[i]).all()
        assert _linear_ll_infeasible(p, X[i])
    Xs, Ys = X[~infeasible], Y[~infeasible]
    assert _within(Ys, p.ll_bounds)
    f_star, g_star = p.lower(Xs, Ys)
    assert np.all(np.isfinite(f_star))
    assert np.all(g_star <= FEAS_TOL)
    tol = 1e-8 * (1.0 + np.abs(f_star))
    for i in range(len(Xs)):
        assert _sampled_best(p, Xs[i], Ys[i], rng) >= f_star[i] - tol[i]
    for i in range(min(4, len(Xs))):  # the local searches are the slow part: a few rows suffice
        starts = _ll_search_starts(p, Xs[i], Ys[i], rng, n_starts=2)
        assert _local_search_best(p, Xs[i], starts) >= f_star[i] - tol[i]


def test_ll_response_rejects_wrong_shapes():
    p = _problem("SMD1", (("ll_dim", 5), ("ul_dim", 5)))
    with pytest.raises(ValueError, match="SMD1"):
        p.ll_response(np.zeros((3, 4)))
    with pytest.raises(ValueError):
        p.ll_response(np.zeros((2, 3, 5)))


# ------------------------------------------------------------------------------ evaluation interface


@pytest.mark.parametrize("name, kwargs", CASES)
def test_batch_equals_row_by_row_and_shapes(name, kwargs):
    p = _problem(name, kwargs)
    rng = _rng(name, kwargs)
    X, Y = _uniform(rng, p.ul_bounds, 6), _uniform(rng, p.ll_bounds, 6)
    for level in (p.upper, p.lower):
        values, constraints = level(X, Y)
        assert values.shape == (6,)
        assert constraints.shape == (6, p.n_ul_constraints if level == p.upper else p.n_ll_constraints)
        for i in range(6):
            v, c = level(X[i], Y[i])
            assert isinstance(v, float)
            np.testing.assert_allclose(v, values[i], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(c, constraints[i], rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=p.name):
        p.upper(np.zeros((2, p.ul_dim + 1)), np.zeros((2, p.ll_dim)))
    with pytest.raises(ValueError, match=p.name):
        p.lower(np.zeros((2, p.ul_dim)), np.zeros((2, p.ll_dim + 1)))
    with pytest.raises(ValueError, match=p.name):
        p.lower(np.zeros((2, p.ul_dim)), np.zeros((3, p.ll_dim)))
    with pytest.raises(ValueError, match=p.name):
        p.upper(np.zeros((1, 2, p.ul_dim)), np.zeros((1, 2, p.ll_dim)))
    assert pickle.loads(pickle.dumps(p)).settings == p.settings


def _square_sum(x, y):
    return float(np.sum(x**2) + np.sum(y**2))


@pytest.mark.parametrize(
    "ul_bounds, message",
    [
        (([1.0, 0.0], [0.0, 1.0]), "lower > upper"),
        (([0.0, -np.inf], [1.0, 1.0]), "finite"),
        (([0.0, np.nan], [1.0, 1.0]), "finite"),
        (([0.0, 0.0], [1.0]), "one length"),
        (([], []), "empty"),
        ((0.0,), "pair"),
    ],
)
def test_user_problem_rejects_bad_bounds(ul_bounds, message):
    with pytest.raises(ValueError, match=message):
        eb.Problem(_square_sum, _square_sum, ul_bounds=ul_bounds, ll_bounds=([0.0], [1.0]), name="bad-bounds")


def test_user_problem_rejects_wrong_output_shapes():
    bounds = ([0.0, 0.0], [1.0, 1.0])
    X = np.full((3, 2), 0.5)
    p = eb.Problem(
        lambda X, Y: np.zeros((len(X), 2)), _square_sum, bounds, bounds, vectorized=True, name="wide"
    )
    with pytest.raises(ValueError, match="wide"):
        p.upper(X, X)
    p = eb.Problem(lambda x, y: np.zeros(2), _square_sum, bounds, bounds, name="per-point")
    with pytest.raises(ValueError, match="per-point"):
        p.upper(X, X)
    p = eb.Problem(
        _square_sum,
        _square_sum,
        bounds,
        bounds,
        upper_constraints=lambda x, y: np.zeros(2),
        n_ul_constraints=3,
        name="count",
    )
    with pytest.raises(ValueError, match="count"):
        p.upper(X, X)
    # A definition error is never swallowed as a failed evaluation.
    with pytest.raises(ValueError, match="wide"):
        Evaluator(
            eb.Problem(
                lambda X, Y: np.zeros((len(X), 2)), _square_sum, bounds, bounds, vectorized=True, name="wide"
            )
        ).upper(X, X)


# ---------------------------------------------------------------------------------------- counting


@pytest.mark.parametrize("name, kwargs", [CASES[0], CASES[-1], CASES[-11]])
def test_evaluator_counts_rows_per_level(name, kwargs):
    p = _problem(name, kwargs)
    rng = _rng(name, kwargs)
    ev = Evaluator(p)
    X, Y = _uniform(rng, p.ul_bounds, 7), _uniform(rng, p.ll_bounds, 7)
    ev.upper(X, Y)
    assert (ev.n_ul_evals, ev.n_ll_evals) == (7, 0)
    ev.lower(X[:3], Y[:3])
    assert (ev.n_ul_evals, ev.n_ll_evals) == (7, 3)
    ev.lower(X[0], Y[0])
    assert (ev.n_ul_evals, ev.n_ll_evals) == (7, 4)
    assert ev.ul.n_failed == ev.ll.n_failed == 0 and ev.ul.first_error is None


def _flaky_point(x, y):
    """Raises, returns NaN or inf depending on x[0]; otherwise a number."""
    if x[0] == 1.0:
        raise RuntimeError("simulator crashed")
    if x[0] == 2.0:
        return np.nan
    if x[0] == 3.0:
        return np.inf
    return float(x[0] + y[0])


def _flaky_batch(X, Y):
    if np.any(X[:, 0] == 1.0):
        raise RuntimeError("simulator crashed")
    values = X[:, 0] + Y[:, 0]
    values[X[:, 0] == 2.0] = np.nan
    values[X[:, 0] == 3.0] = np.inf
    return values


def _constraint_point(x, y):
    return np.array([np.nan if x[0] == 4.0 else -1.0])


def _constraint_batch(X, Y):
    return np.where(X[:, :1] == 4.0, np.nan, -1.0)


@pytest.mark.parametrize("vectorized", [False, True])
def test_evaluator_turns_failures_into_infeasible_points(vectorized):
    flaky, constraint = (_flaky_batch, _constraint_batch) if vectorized else (_flaky_point, _constraint_point)
    bounds = ([0.0], [5.0])
    p = eb.Problem(
        flaky,
        flaky,
        bounds,
        bounds,
        upper_constraints=constraint,
        n_ul_constraints=1,
        vectorized=vectorized,
        name="flaky",
    )
    ev = Evaluator(p)
    Y = np.zeros((5, 1))
    # NaN, inf and a NaN constraint, no exception: exactly those rows fail.
    X = np.array([[0.0], [2.0], [3.0], [4.0], [0.5]])
    out = ev.upper(X, Y)
    expected = np.array([False, True, True, True, False])
    np.testing.assert_array_equal(out.failed, expected)
    assert np.all(np.isinf(out.cv[expected])) and np.all(out.cv[~expected] == 0.0)
    assert np.all(np.isinf(out.values[expected]))
    np.testing.assert_array_equal(out.values[~expected], [0.0, 0.5])
    assert (ev.ul.n_evals, ev.ul.n_failed, ev.ll.n_evals) == (5, 3, 0)
    first = ev.ul.first_error
    assert first
    # An exception: the raising row fails (every row of the batch when the function is vectorised).
    X = np.array([[0.0], [1.0], [0.5]])
    out = ev.lower(X, Y[:3])
    expected = np.array([True, True, True]) if vectorized else np.array([False, True, False])
    np.testing.assert_array_equal(out.failed, expected)
    assert np.all(np.isinf(out.values[expected]))
    assert (ev.ll.n_evals, ev.ll.n_failed) == (3, int(expected.sum()))
    assert "simulator crashed" in ev.ll.first_error
    assert ev.ul.first_error == first  # the first message is kept
    # The upper level has a constraint: an exception there gives cv = inf too.
    out = ev.upper(X, Y[:3])
    assert np.all(np.isinf(out.cv[expected])) and np.all(out.cv[~expected] == 0.0)


@pytest.mark.parametrize("vectorized", [False, True])
def test_failed_point_of_an_unconstrained_level_has_infinite_cv(vectorized):
    flaky = _flaky_batch if vectorized else _flaky_point
    bounds = ([0.0], [5.0])
    ev = Evaluator(eb.Problem(flaky, flaky, bounds, bounds, vectorized=vectorized, name="flaky"))
    out = ev.lower(np.array([[0.0], [1.0], [2.0]]), np.zeros((3, 1)))
    assert out.failed[1:].all()
    assert np.all(np.isinf(out.cv[out.failed]))


# ------------------------------------------------------------------------------------------ registry


def test_names_and_suites():
    others = ["MI1", "MI2", "MI3", "MI4", "MF1"]
    assert registry.names() == SMD_NAMES + TP_NAMES + others + MO_NAMES
    assert eb.benchmarks.names() == SMD_NAMES + TP_NAMES + others + MO_NAMES
    assert registry.suite_of("smd7") == "SMD" and registry.suite_of(" Tp10 ") == "TP"
    assert registry.suite_of("mi3") == "MI" and registry.suite_of("MF1") == "MF"
    assert registry.suite_of("bmo2") == "BMO"
    assert eb.benchmarks.get("smd3").name == "SMD3"


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("SMD13", {}, "valid names: SMD1, SMD2"),
        ("nope", {}, "TP10"),
        (3, {}, "unknown benchmark"),
        ("TP1", {"ul_dim": 2}, "TP1: unknown argument"),
        ("TP9", {"ul_dim": 5}, "dim"),
        ("SMD1", {"dim": 5}, "ul_dim, ll_dim"),
        ("SMD1", {"ul_dim": 1}, "ul_dim must be at least 2"),
        ("SMD1", {"ul_dim": 5, "ll_dim": 2}, r"SMD1: ll_dim must be at least .* = 3"),
        ("SMD1", {"ul_dim": 2.0}, "integer"),
        ("SMD1", {"ul_dim": True}, "integer"),
        ("SMD5", {"ul_dim": 2, "ll_dim": 2}, "Rosenbrock"),
        ("SMD8", {"ul_dim": 4, "ll_dim": 3}, "SMD8"),
        ("SMD6", {"ul_dim": 2, "ll_dim": 2}, "one pair"),
        ("SMD10", {"ul_dim": 5, "ll_dim": 3}, "cubic"),
        ("SMD12", {"ul_dim": 2, "ll_dim": 2}, "SMD12"),
        ("SMD12", {"variant": "matlab"}, "variant"),
        ("TP9", {"dim": 0}, "TP9: dim"),
        ("TP10", {"dim": 2.5}, "TP10: dim"),
    ],
)
def test_unknown_names_and_sizes_raise(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        eb.benchmarks.get(name, **kwargs)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_from_settings_round_trip(name, kwargs):
    p = _problem(name, kwargs)
    q = registry.from_settings(p.name, p.settings)
    assert type(q) is type(p) and q.settings == p.settings
    np.testing.assert_array_equal(q.ul_bounds[0], p.ul_bounds[0])
    np.testing.assert_array_equal(q.ll_bounds[1], p.ll_bounds[1])


def test_from_settings_rejects_wrong_sizes():
    with pytest.raises(ValueError, match="TP3"):
        registry.from_settings("TP3", {"ul_dim": 3, "ll_dim": 2})
    with pytest.raises(ValueError, match="TP9"):
        registry.from_settings("TP9", {"ul_dim": 3, "ll_dim": 4})
    assert registry.from_settings("TP9", {"ul_dim": 3, "ll_dim": 3}).ll_dim == 3


@pytest.mark.parametrize("name", registry.names())
def test_a_point_s_values_do_not_depend_on_the_batch_it_is_evaluated_in(name):
    # The engine groups points into batches as it sees fit (chunks solved together, parts sent to workers); a run is
    # identical for every grouping only if each point's values are the same alone as among others, to the bit.
    problem = registry.get(name)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    n = 40
    (ul_lo, ul_hi), (ll_lo, ll_hi) = problem.ul_bounds, problem.ll_bounds
    X = ul_lo + rng.random((n, problem.ul_dim)) * (ul_hi - ul_lo)
    Y = ll_lo + rng.random((n, problem.ll_dim)) * (ll_hi - ll_lo)
    for level in ("upper", "lower"):
        values, constraints = problem.evaluate_batch(level, X, Y)
        for i in (0, 17, n - 1):
            one_values, one_constraints = problem.evaluate_batch(level, X[i:i + 1], Y[i:i + 1])
            np.testing.assert_array_equal(one_values[0], values[i])
            np.testing.assert_array_equal(one_constraints[0], constraints[i])
