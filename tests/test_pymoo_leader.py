"""pymoo algorithms in the leader's seat: through solve() and through pymoo's own minimize()."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.algorithms.soo.nonconvex.cmaes import CMAES
from pymoo.algorithms.soo.nonconvex.de import DE
from pymoo.algorithms.soo.nonconvex.ga import GA
from pymoo.algorithms.soo.nonconvex.pso import PSO
from pymoo.optimize import minimize

import evobilevel as eb
from evobilevel.algorithms import PymooLeader, make_algorithm
from evobilevel.bridge import HUGE, LeaderProblem


class Counted:
    """A batch function that counts the points it is called on: an independent count of evaluations."""

    def __init__(self, level_function):
        self.level_function = level_function
        self.points = 0

    def __call__(self, X, Y):
        self.points += len(X)
        return self.level_function(X, Y)[0]


def counted_smd1():
    """SMD1 (2, 3) through counting wrappers of its own functions, with its known optimum."""
    smd = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    upper, lower = Counted(smd.upper), Counted(smd.lower)
    problem = eb.Problem(upper=upper, lower=lower, ul_bounds=smd.ul_bounds, ll_bounds=smd.ll_bounds, vectorized=True,
                         name="SMD1-counted", optimum=smd.optimum)
    return problem, upper, lower


ALGORITHMS = {
    "GA": lambda: GA(pop_size=20),
    "DE": lambda: DE(pop_size=20),
    "PSO": lambda: PSO(pop_size=20),
    "CMAES": lambda: CMAES(),
}


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_pymoo_algorithms_solve_smd1_through_the_bridge_with_exact_counts(name):
    problem, upper, lower = counted_smd1()
    r = eb.solve(problem, algorithm=ALGORITHMS[name](), seed=0, target=1e-2, max_ul_evals=5000)
    assert r.success and r.target_reached, r.message
    assert r.ul_error < 1e-2 and r.ll_error < 1e-2 and r.ll_gap < 1e-2
    assert r.algorithm == f"pymoo-{name.lower()}"
    # Every point the functions saw is counted once: the run's evaluations, plus the independent check's.
    assert upper.points == r.n_ul_evals
    assert lower.points == r.n_ll_evals + r.n_ll_evals_check
    assert r.history[-1]["n_ul_evals"] == r.n_ul_evals and r.history[-1]["n_ll_evals"] == r.n_ll_evals


def _same(a, b):
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y) and np.array_equal(a.F, b.F)
    assert (a.n_ul_evals, a.n_ll_evals, a.n_ll_evals_check, a.ll_gap) == (b.n_ul_evals, b.n_ll_evals,
                                                                          b.n_ll_evals_check, b.ll_gap)
    assert [rec["best_F"] for rec in a.history] == [rec["best_F"] for rec in b.history]


def test_results_are_identical_for_any_n_jobs_and_repeatable():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    algorithm = PymooLeader(GA(pop_size=12), termination=("n_gen", 6))
    inline = eb.solve(p, algorithm=algorithm, seed=3)
    np.random.default_rng().random(10)  # global random state plays no part
    _same(inline, eb.solve(p, algorithm=algorithm, seed=3, n_jobs=2))
    _same(inline, eb.solve(p, algorithm=algorithm, seed=3))
    other = eb.solve(p, algorithm=algorithm, seed=4)
    assert not np.array_equal(inline.x, other.x)


def test_budgets_bind_a_pymoo_leader():
    p = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
    r = eb.solve(p, algorithm=GA(pop_size=20), seed=0, max_ul_evals=70)
    assert r.n_ul_evals <= 70 and "upper-level budget" in r.message
    assert r.feasible and np.isfinite(r.F)
    r = eb.solve(p, algorithm=GA(pop_size=20), seed=0, max_ll_evals=3000)
    assert r.n_ll_evals <= 3000 and "lower-level budget" in r.message


def test_a_resumed_pymoo_run_equals_the_uninterrupted_one(tmp_path):
    p = eb.benchmarks.get("SMD2", ul_dim=2, ll_dim=3)
    algorithm = PymooLeader(DE(pop_size=12), termination=("n_gen", 9))
    whole = eb.solve(p, algorithm=algorithm, seed=1)
    ckpt = tmp_path / "run.ckpt"
    stopped = eb.solve(p, algorithm=algorithm, seed=1, checkpoint=ckpt, checkpoint_every=2,
                       callback=lambda record: record["generation"] == 4)
    assert stopped.message == "stopped by callback" and stopped.n_ul_evals < whole.n_ul_evals
    _same(whole, eb.solve(p, algorithm=algorithm, seed=1, resume=ckpt, n_jobs=2))


def test_a_failing_leader_never_becomes_the_answer():
    def upper(x, y):
        if x[0] > 0.5:
            raise RuntimeError("simulator crashed")
        return (x[0] - 1) ** 2 + (y[0] - 1) ** 2

    def lower(x, y):
        return (y[0] - x[0]) ** 2

    p = eb.Problem(upper=upper, lower=lower, ul_bounds=[(-2, 2)], ll_bounds=[(-2, 2)], name="flaky-leader")
    r = eb.solve(p, algorithm=GA(pop_size=16), seed=0, max_ul_evals=400)
    assert r.n_ul_failed > 0 and "simulator crashed" in r.first_error
    assert r.feasible and r.x[0] <= 0.5 and abs(r.x[0] - 0.5) < 0.05  # the best the leader may reach
    assert r.ll_gap < 1e-6


def test_pymoo_sees_failures_and_infeasible_followers_as_infeasible():
    def upper(X, Y):
        return np.where(X[:, 0] > 0, np.nan, X[:, 0] ** 2)

    def lower(X, Y):
        return (Y[:, 0] - X[:, 0]) ** 2

    def lower_constraints(X, Y):  # no feasible answer for x < -1
        return (-1 - X[:, 0])[:, None] + 0 * Y[:, :1]

    p = eb.Problem(upper, lower, [(-2, 2)], [(-2, 2)], lower_constraints=lower_constraints, vectorized=True,
                   name="edges")
    leader = LeaderProblem(p, seed=0)
    F, G = leader.evaluate(np.array([[0.5], [-1.5], [-0.5]]), return_values_of=["F", "G"])
    assert F[0, 0] == HUGE and G[0, -1] == HUGE  # failed upper level: worst value, infeasible
    assert G[1, -1] > 0  # the follower has no feasible answer: infeasible for the leader
    assert F[2, 0] == pytest.approx(0.25) and np.all(G[2] <= 0)


def test_without_constraints_pymoo_sees_none_and_a_failed_follower_is_worst():
    def lower(X, Y):  # the follower's simulator fails for x > 1
        return np.where(X[:, 0] > 1, np.nan, (Y[:, 0] - X[:, 0]) ** 2)

    p = eb.Problem(lambda X, Y: X[:, 0] ** 2 + Y[:, 0], lower, [(-2, 2)], [(-2, 2)], vectorized=True, name="free")
    leader = LeaderProblem(p, seed=0)
    assert leader.n_ieq_constr == 0  # MOEA/D, for one, takes no constraints
    F = leader.evaluate(np.array([[1.5], [0.5]]))
    assert F[0, 0] == HUGE and F[1, 0] == pytest.approx(0.75, abs=1e-4)  # y* = 0.5, to the follower's f tolerance


def test_standalone_leader_problem_with_pymoo_minimize():
    problem, upper, lower = counted_smd1()
    leader = LeaderProblem(problem, seed=0)
    res = minimize(leader, GA(pop_size=20), ("n_gen", 25), seed=1)
    assert leader.n_ul_evals == res.algorithm.evaluator.n_eval == upper.points
    assert leader.n_ll_evals == lower.points
    assert leader.best.F == pytest.approx(float(res.F[0])) and leader.best.F < 1e-2
    front = leader.front(res.opt, check_ll=True)
    assert front.F.shape == (1, 1) and front.ll_gap[0] < 1e-6
    assert np.allclose(problem.upper(front.X, front.Y)[0], front.F[:, 0])
    copy = pickle.loads(pickle.dumps(leader))  # a checkpoint pickles it without its run context
    with pytest.raises(RuntimeError, match="attach"):
        copy.evaluate(np.zeros((1, 2)))


def test_make_algorithm_wraps_pymoo_algorithms_and_describes_their_settings():
    wrapped = make_algorithm(GA(pop_size=20))
    assert isinstance(wrapped, PymooLeader) and wrapped.name == "pymoo-ga"
    settings = wrapped.settings()
    assert settings["algorithm"]["type"] == "GA" and settings["algorithm"]["pop_size"] == 20
    assert make_algorithm(GA(pop_size=30)).settings() != settings
    assert make_algorithm(GA(pop_size=20)).settings() == settings
    with pytest.raises(TypeError, match="pymoo Algorithm"):
        PymooLeader(object())
    used = GA(pop_size=10)
    used.setup(LeaderProblem(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)))
    with pytest.raises(ValueError, match="already been set up"):
        PymooLeader(used)
    with pytest.raises(TypeError, match="pymoo Algorithm object"):
        make_algorithm(3.0)


def test_a_pymoo_leader_with_several_objectives_returns_a_front_of_checked_pairs():
    p = eb.benchmarks.get("BMO1")
    r = eb.solve(p, algorithm=NSGA2(pop_size=12), seed=0, max_ul_evals=12 * 8)
    front = r.front
    assert len(front) > 3 and front.F.shape == (len(front), 2) and front.X.shape == (len(front), 3)
    assert front.Y.shape == (len(front), 3) and front.ll_gap.shape == (len(front),)
    F, G = p.upper(front.X, front.Y)
    f, _ = p.lower(front.X, front.Y)
    assert np.array_equal(F, front.F) and np.array_equal(f, front.f) and np.all(G <= 0)
    assert r.ll_gap == front.ll_gap.max() < 1e-3
    assert any(np.array_equal(r.F, row) for row in front.F)  # the reported pair is one of the front's
    assert r.history[-1]["best_F"] is None and r.history[-1]["front_size"] == len(front)


def test_a_pymoo_leaders_convex_followers_are_refined_where_they_were_searched_from_scratch():
    # TP2's follower is a convex quadratic under linear constraints: the first members' solves from scratch are
    # refinements from the test's points (8 evaluations each at two variables), not searches (measured: 2,254 LL
    # evaluations against 3,071 in 400 UL evaluations, the same answer).
    from evobilevel.algorithms.followers import Followers

    p = eb.benchmarks.get("TP2")
    runs = {flag: eb.solve(p, algorithm=PymooLeader(GA(pop_size=20), followers=Followers(certify_convex=flag)), seed=0,
                           max_ul_evals=400) for flag in (True, False)}
    assert runs[True].n_ul_evals == runs[False].n_ul_evals == 400
    assert runs[True].n_ll_evals < runs[False].n_ll_evals - 500
    assert runs[True].F == runs[False].F and runs[True].ul_error < 1e-2
