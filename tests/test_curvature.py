"""Curvature carried between the lower-level problems of nearby leader's points: what a lock-step refinement learns
(each variable's curvature of f, by the box method only), a refinement that starts from it, one that recovers from
a wrong one, its way through the engine and the archive, and what it saves in a BLEAQ run."""

from __future__ import annotations

import numpy as np
import pytest
from lower_cases import bleaq_ll_evals, case, perturbed

import evobilevel as eb
from evobilevel.algorithms.archive import SolutionArchive
from evobilevel.evaluator import Evaluator
from evobilevel.lower import DifferentialEvolution
from evobilevel.lower.lockstep import LockstepRefinement
from evobilevel.parallel.engine import LowerEngine


def refined(name, size, scale, curvature=None, seed=3, n=12):
    """(problem, f_star, solution) of a lock-step refinement of n rows of a case, from starts ``scale`` of the range
    away from the optimum."""
    problem, X, Y_star, f_star = case(name, size, n=n, seed=seed)
    Y0 = perturbed(problem, Y_star, scale, seed=seed + 2)
    solution = LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0, curvature=curvature)
    return problem, f_star, solution


def learnt(name, size, scale, seed=3, n=12):
    """The curvature a refinement of the same rows learnt from other starts."""
    problem, X, Y_star, _ = case(name, size, n=n, seed=seed)
    Y0 = perturbed(problem, Y_star, scale, seed=seed + 1)
    return LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y0).curvature


def test_the_box_method_learns_each_variables_curvature_and_sqp_none():
    _, _, solution = refined("SMD1", (5, 5), 0.1)
    assert np.isfinite(solution.curvature).all() and (solution.curvature > 0).all()
    # SMD1's first lower-level block is a sum of squares: curvature 2 in each of its three variables.
    np.testing.assert_allclose(solution.curvature[:, :3], 2.0, rtol=0.02)
    _, _, constrained = refined("SMD10", (5, 5), 0.1, curvature=np.ones((12, 5)))
    assert np.isnan(constrained.curvature).all()  # nor passed on
    # The DE's answers carry what its polish learnt.
    problem, X, _, _ = case("SMD1", (5, 5), n=4, seed=12)
    polished = DifferentialEvolution().solve(Evaluator(problem), X, np.random.default_rng(0))
    assert np.isfinite(polished.curvature).all()


@pytest.mark.parametrize("name, size", [("SMD5", (10, 10)), ("SMD6", (5, 5))])
def test_a_refinement_from_learnt_curvature_spends_fewer_evaluations(name, size):
    _, f_star, alone = refined(name, size, 0.1)
    _, _, carried = refined(name, size, 0.1, curvature=learnt(name, size, 0.1))
    assert alone.success.all() and carried.success.all()
    assert np.all(np.abs(carried.f - f_star) <= 1e-6 * (1 + np.abs(f_star)))
    assert carried.n_evals.sum() < 0.9 * alone.n_evals.sum()


@pytest.mark.parametrize("wrong", [1e-8, 1e8])
def test_a_wrong_curvature_is_dropped_and_the_search_still_converges(wrong):
    """SMD1's ``tan`` variables curve by orders of magnitude more near their walls than near the optimum: a search
    that fails with the carried curvature starts again without it."""
    problem, f_star, alone = refined("SMD1", (5, 5), 0.3)
    _, _, carried = refined("SMD1", (5, 5), 0.3, curvature=np.full((12, problem.ll_dim), wrong))
    assert alone.success.all() and carried.success.all()
    np.testing.assert_allclose(carried.f, f_star, atol=1e-8)


def test_a_row_that_stops_at_its_start_passes_its_curvature_on():
    problem, X, Y_star, _ = case("SMD1", (5, 5), n=3, seed=5)
    given = np.full((3, problem.ll_dim), 3.0)
    given[1] = np.nan
    solution = LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), Y0=Y_star,
                                          curvature=given)
    # One gradient each, and the backward points where forward differences do not show the optimum (tan's slope).
    assert solution.success.all() and np.all(solution.n_evals <= 2 * problem.ll_dim + 1)
    np.testing.assert_array_equal(solution.curvature, given)


def test_a_curvature_of_the_wrong_shape_is_named():
    problem, X, _, _ = case("SMD1", (5, 5), n=3, seed=5)
    with pytest.raises(ValueError, match=r"SMD1.*curvature must have shape \(3, 5\), got \(3, 4\)"):
        LockstepRefinement().solve(Evaluator(problem), X, np.random.default_rng(0), curvature=np.ones((3, 4)))


def test_the_engine_gives_curvature_to_refinements_only():
    problem, X, Y_star, _ = case("SMD1", (5, 5), n=6, seed=7)
    curvature = learnt("SMD1", (5, 5), 0.1, seed=7, n=6)
    Y0 = perturbed(problem, Y_star, 0.1, seed=8)
    engine = LowerEngine(chunk_size=2)

    def solve(solver, **kw):
        return engine.solve(problem, solver, X, np.random.SeedSequence(3), **kw)[0]

    through = solve(LockstepRefinement(), Y0=Y0, curvature=curvature)
    without = solve(LockstepRefinement(), Y0=Y0)
    direct = LockstepRefinement().solve_parts(
        Evaluator(problem), [(X[i:i + 2], np.random.default_rng(s), Y0[i:i + 2], None, curvature[i:i + 2])
                             for i, s in zip(range(0, 6, 2), np.random.SeedSequence(3).spawn(3))])
    np.testing.assert_array_equal(through.Y, np.concatenate([d.Y for d in direct]))
    assert through.n_evals.sum() != without.n_evals.sum()  # it was used
    # A DE takes none; the engine does not pass it on.
    de_with, de_without = solve(DifferentialEvolution(), curvature=curvature), solve(DifferentialEvolution())
    np.testing.assert_array_equal(de_with.Y, de_without.Y)


def test_the_archive_gives_the_nearest_entrys_curvature():
    bounds = (np.zeros(2), np.array([1.0, 10.0]))
    archive = SolutionArchive(bounds, 3, capacity=4)
    assert archive.nearest_curvature(np.zeros((1, 2))) is None
    archive.add(X=np.array([[0.0, 0.0]]), Y=np.zeros((1, 3)), f=np.zeros(1))
    assert archive.nearest_curvature(np.zeros((1, 2))) is None  # nothing learnt anywhere
    archive.add(X=np.array([[1.0, 0.0], [0.0, 10.0]]), Y=np.zeros((2, 3)), f=np.zeros(2),
                curvature=np.array([[1.0, 2.0, np.nan], [4.0, 5.0, 6.0]]))
    # Distances in the unit box: (0.2, 9) is nearer to (0, 10) than to (1, 0), and (0.9, 1) to (1, 0).
    near = archive.nearest_curvature(np.array([[0.2, 9.0], [0.9, 1.0], [0.1, 0.1]]))
    np.testing.assert_array_equal(near[:2], [[4.0, 5.0, 6.0], [1.0, 2.0, np.nan]])
    assert np.isnan(near[2]).all()


def test_carried_curvature_cuts_a_bleaq_runs_lower_level_evaluations(monkeypatch):
    """SMD8 (5, 5), whose follower is a Rosenbrock valley: the refinements of a BLEAQ run start from the curvature
    learnt at the nearest archived optimum. Summed over four seeds, since one run's path is a draw (measured: 116k
    against 129k LL evaluations; per seed 0.85-0.99 of the runs without it. Before refinements took a short move's
    secant where nothing else told a variable's curvature, the runs without it spent 165k)."""
    problem = eb.benchmarks.get("SMD8", ul_dim=5, ll_dim=5)
    carried = bleaq_ll_evals(problem, range(4))
    monkeypatch.setattr(SolutionArchive, "nearest_curvature", lambda self, X: None)
    alone = bleaq_ll_evals(problem, range(4))
    assert carried < 0.95 * alone
