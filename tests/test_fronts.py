"""Leaders with several objectives: the problem interface, the front, the BMO test problems and their known
fronts, results on disk, the report and the plots, and how well pymoo's NSGA-II finds the fronts."""

from __future__ import annotations

import json

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.cli import main
from evobilevel.evaluator import Evaluator
from evobilevel.front import Front, compromise, non_dominated
from evobilevel.indicators import front_quality
from evobilevel.lower import check_solver
from evobilevel.problem import ProblemDefinitionError

BMO = ["BMO1", "BMO2", "BMO3"]


def _two_objectives(x, y):
    return [x[0] + y[0] ** 2, 1 - x[0]]


def _follower(x, y):
    return (y[0] - 0.5 * x[0]) ** 2


# ------------------------------------------------------------------------------------------- the problem
def test_a_leader_with_two_objectives_per_point_and_vectorized():
    p = eb.Problem(_two_objectives, _follower, [(0, 1)], [(-1, 1)], n_objectives=2, name="two")
    F, G = p.upper(np.array([[0.5], [1.0]]), np.array([[0.25], [0.0]]))
    assert F.shape == (2, 2) and np.allclose(F, [[0.5625, 0.5], [1.0, 0.0]]) and G.shape == (2, 0)
    F1, _ = p.upper(np.array([0.5]), np.array([0.25]))
    assert F1.shape == (2,)
    vectorized = eb.Problem(lambda X, Y: np.column_stack([X[:, 0], -X[:, 0]]), lambda X, Y: Y[:, 0] ** 2,
                            [(0, 1)], [(-1, 1)], n_objectives=2, vectorized=True, name="two-v")
    assert vectorized.upper(np.ones((3, 1)), np.zeros((3, 1)))[0].shape == (3, 2)
    assert "n_objectives=2" in repr(vectorized)


@pytest.mark.parametrize("upper, vectorized, words", [
    (lambda x, y: [x[0], x[0], x[0]], False, "upper returned shape (3,) for one point, expected (2,)"),
    (lambda x, y: x[0], False, "upper returned shape () for one point, expected (2,) (n_objectives=2)"),
    (lambda X, Y: X[:, 0], True, "upper returned shape (4,), expected (4, 2) (n_objectives=2)"),
    (lambda X, Y: np.ones((4, 3)), True, "upper returned shape (4, 3), expected (4, 2)"),
])
def test_the_wrong_number_of_objectives_is_named(upper, vectorized, words):
    p = eb.Problem(upper, lambda *a: 0.0 if not vectorized else np.zeros(len(a[0])), [(0, 1)], [(0, 1)],
                   n_objectives=2, vectorized=vectorized, name="bad-leader")
    with pytest.raises(ProblemDefinitionError, match="bad-leader: " + words.replace("(", r"\(").replace(")", r"\)")):
        Evaluator(p).upper(np.zeros((4, 1)), np.zeros((4, 1)))


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_n_objectives_must_be_a_positive_integer(k):
    with pytest.raises(ProblemDefinitionError, match="n_objectives must be a positive integer"):
        eb.Problem(_two_objectives, _follower, [(0, 1)], [(-1, 1)], n_objectives=k, name="p")


def test_a_failed_objective_makes_the_whole_point_infeasible():
    def upper(x, y):
        return [x[0], np.nan if x[0] > 0.5 else 1.0]

    ev = Evaluator(eb.Problem(upper, _follower, [(0, 1)], [(-1, 1)], n_objectives=2, name="half-nan"))
    out = ev.upper(np.array([[0.2], [0.8]]), np.zeros((2, 1)))
    assert out.failed.tolist() == [False, True] and np.isinf(out.values[1]).all() and np.isinf(out.cv[1])
    assert ev.ul.n_failed == 1 and "[0.8, nan]" in ev.ul.first_error


@pytest.mark.parametrize("algorithm, name", [("bleaq", "bleaq"), ("nested", "nested"), ("GA", "pymoo-ga"),
                                             ("CMAES", "pymoo-cmaes")])
def test_single_objective_algorithms_refuse_several_objectives(algorithm, name):
    if algorithm in ("GA", "CMAES"):  # pymoo's single-objective algorithms would fail with pymoo's own errors
        from pymoo.algorithms.soo.nonconvex.cmaes import CMAES
        from pymoo.algorithms.soo.nonconvex.ga import GA

        algorithm = {"GA": GA, "CMAES": CMAES}[algorithm]()
    p = eb.benchmarks.get("BMO2")
    with pytest.raises(ValueError, match=f"{name} optimises a leader with one objective, and BMO2 has 2; "
                                         "use a multi-objective pymoo algorithm"):
        eb.solve(p, algorithm=algorithm)


# --------------------------------------------------------------------------------------------- the front
def test_non_dominated_and_the_balanced_pair():
    F = np.array([[0.0, 1.0], [0.5, 0.5], [0.6, 0.6], [1.0, 0.0], [0.5, 0.5], [0.2, 1.0]])
    assert non_dominated(F).tolist() == [True, True, False, True, True, False]
    assert non_dominated(np.empty((0, 2))).shape == (0,)
    assert compromise(F[[0, 1, 3]]) == 1
    sphere = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.58, 0.57, 0.58]])
    assert compromise(sphere) == 3  # the most balanced, although every pair is as far from the ideal point


# ------------------------------------------------------------------------------------ the BMO problems
@pytest.mark.parametrize("name", BMO)
def test_bmo_front_is_the_known_one(name):
    """The closed-form front is right: the follower's answer is optimal, every pair the leader can reach is weakly
    dominated by a pair of the Pareto set, and no reachable pair dominates a point of the front."""
    p = eb.benchmarks.get(name)
    rng = np.random.default_rng(1)
    lo, hi = p.ul_bounds
    X = lo + rng.random((4000, p.ul_dim)) * (hi - lo)
    Y = p.ll_response(X)
    # The follower's answer is optimal (an independent global solve finds nothing better) and feasible.
    solution = check_solver().solve(Evaluator(p), X[:25], rng)
    f, g = p.lower(X[:25], Y[:25])
    assert np.all(f <= solution.f + 1e-9) and np.all(g <= 0)
    F, G = p.upper(X, Y)
    reachable = np.all(G <= 0, axis=1)
    # Moving a reachable pair onto the Pareto set (v = 0, same u) is no worse in any objective.
    on_set = X.copy()
    on_set[:, p.k - 1:] = 0.0
    F_set, G_set = p.upper(on_set, p.ll_response(on_set))
    assert np.all(G_set[reachable] <= 0) and np.all(F_set[reachable] <= F[reachable] + 1e-12)
    # The front is the image of the Pareto set, mutually non-dominated, and not dominated by any reachable pair.
    front = p.pareto_front(300)
    X_set = p.pareto_set(300)
    F_front, G_front = p.upper(X_set, p.ll_response(X_set))
    assert np.allclose(F_front, front) and np.all(G_front <= 0)
    both = np.vstack([front, F[reachable]])
    assert non_dominated(both)[: len(front)].all()


def test_bmo_sizes_and_settings():
    p = eb.benchmarks.get("BMO3", ul_dim=5, ll_dim=4)
    assert (p.ul_dim, p.ll_dim, p.n_objectives, p.r, p.s) == (5, 4, 3, 3, 1)
    assert eb.benchmarks.from_settings("BMO3", p.settings).ul_dim == 5
    assert np.allclose(np.linalg.norm(p.pareto_front(50), axis=1), 1.0)  # the sphere's octant
    with pytest.raises(ValueError, match="BMO1: needs ul_dim >= 2"):
        eb.benchmarks.get("BMO1", ul_dim=3, ll_dim=2)
    assert p.optimum is None


def test_a_follower_that_is_not_optimal_shows_in_the_indicators():
    """The leader's -S(z) term: a follower's answer off its optimum looks better than the true front."""
    p = eb.benchmarks.get("BMO1")
    X = p.pareto_set(40)
    Y = p.ll_response(X)
    Y[:, -1] = 0.5  # z should be 0
    F, _ = p.upper(X, Y)
    assert np.all(F < p.pareto_front(40) - 0.2)


# --------------------------------------------------------------------------------- solve, disk, report
@pytest.fixture(scope="module")
def bmo2_run():
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return eb.solve(eb.benchmarks.get("BMO2"), algorithm=NSGA2(pop_size=16), seed=2, max_ul_evals=16 * 12)


def test_default_algorithm_for_several_objectives_is_nsga2():
    r = eb.solve(eb.benchmarks.get("BMO1"), seed=0, max_ul_evals=150, check_ll=False)
    assert r.algorithm == "pymoo-nsga2" and r.algorithm_settings["algorithm"]["pop_size"] == 100
    assert len(r.front) > 0 and r.front.ll_gap is None and r.ll_gap is None


def test_front_results_round_trip_through_json(bmo2_run, tmp_path):
    r = bmo2_run
    r.to_json(tmp_path / "run.json")
    back = eb.load_result(tmp_path / "run.json")
    for name in ("X", "Y", "F", "f", "ll_gap"):
        assert np.array_equal(getattr(back.front, name), getattr(r.front, name))
    assert np.array_equal(back.F, r.F) and back.F.shape == (2,)
    assert json.loads((tmp_path / "run.json").read_text())["front"]["F"][0] == r.front.F[0].tolist()
    assert "front       " in back.summary() and "front of" in repr(back)


def test_report_and_plot_commands_handle_fronts(bmo2_run, tmp_path, capsys):
    runs = tmp_path / "runs"
    bmo2_run.to_json(runs / "BMO2" / "run0.json")
    eb.solve(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3), algorithm="nested", seed=0,
             max_ul_evals=60).to_json(runs / "SMD1" / "run0.json")
    assert main(["report", str(runs)]) == 0
    text = (runs / "report" / "report.md").read_text()
    quality = front_quality(bmo2_run.front.F, eb.benchmarks.get("BMO2"))
    assert "## Leaders with several objectives" in text and f"| {quality.igd:.4f} (0.0000) |" in text
    assert "| SMD1 | nested |" in text and "front_BMO2_3x3_pymoo-nsga2.png" in text
    assert (runs / "report" / "front_BMO2_3x3_pymoo-nsga2.png").stat().st_size > 10_000
    csv_lines = (runs / "report" / "fronts.csv").read_text().splitlines()
    assert csv_lines[0].startswith("ul_dim,ll_dim,problem,algorithm,n_runs") and csv_lines[1].startswith("3,3,BMO2,")
    assert main(["plot", str(runs / "BMO2" / "run0.json"), "-o", str(tmp_path / "front.png")]) == 0
    assert (tmp_path / "front.png").stat().st_size > 10_000


def test_front_plot_draws_the_known_front_and_checks_its_input(bmo2_run):
    from evobilevel import plot

    fig = plot.front(bmo2_run)
    (ax,) = fig.axes
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[0] == "known front" and labels[1].startswith("found (") and "balanced pair" in labels
    three = Front(X=np.zeros((2, 4)), Y=np.zeros((2, 3)), F=np.eye(3)[:2], f=np.zeros(2))
    assert len(plot.front(three).axes) == 3
    with pytest.raises(ValueError, match="no front"):
        plot.front(eb.solve(eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3), "nested", max_ul_evals=40))


# ------------------------------------------------------------------------------------------- acceptance
#: NSGA-II's population in the measurements below.
POP_SIZE = 40
GENERATIONS = 50
#: The median IGD must stay below this multiple of the IGD of an evenly spread set of as many points (see below).
IGD_FACTOR = 1.5


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param("BMO1", marks=pytest.mark.ci), "BMO2", "BMO3"])
def test_nsga2_finds_each_known_front_over_11_seeds(name):
    """Median IGD over 11 seeds below 1.5 times that of an evenly spread set of as many points, every pair's
    lower-level gap below 1e-3.

    Why that threshold: IGD is a distance in the front's own units (these fronts span 1 per objective). An evenly
    spread set of N points is about the best N points can do (on a curve, a quarter of their spacing: 0.0079 on
    BMO1 and 0.0100 on BMO2 for 40 points; 0.091 on BMO3's surface). 1.5 times that leaves room for NSGA-II's
    uneven spacing but not for a missing stretch: leaving out the part F1 > 0.9 of BMO1's front (7 % of its length)
    already raises an even set's IGD by half. Measured medians: 1.2-1.3 times the even set's.
    """
    from pymoo.algorithms.moo.nsga2 import NSGA2

    p = eb.benchmarks.get(name)
    algorithm = eb.algorithms.PymooLeader(NSGA2(pop_size=POP_SIZE), termination=("n_gen", GENERATIONS))
    runs = [eb.solve(p, algorithm=algorithm, seed=seed) for seed in range(11)]
    igd = [front_quality(r.front.F, p).igd for r in runs]
    even = front_quality(p.pareto_front(POP_SIZE), p).igd
    assert np.median(igd) < IGD_FACTOR * even, (igd, even)
    assert all(len(r.front) >= POP_SIZE // 2 for r in runs)
    assert max(r.ll_gap for r in runs) < 1e-3
    assert all(np.all(r.front.ll_gap < 1e-3) for r in runs)
