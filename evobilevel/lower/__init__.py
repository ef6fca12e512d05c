"""Lower-level solvers: batched differential evolution, local refinements (one scipy search per row, or all rows in
lock step) and an adapter for pymoo algorithms.

Every solver implements :meth:`LowerSolver.solve` ``(ev, X, rng, Y0=None, max_evals=None) -> LowerSolution``:
it solves the lower level for each row of ``X`` (n, ul_dim), evaluating only through the counting evaluator
``ev`` and never spending more than ``max_evals[i]`` evaluations on row i. :func:`prepare` checks those
arguments, :class:`RowBudget` counts a batch's evaluations per row against the caps, and :func:`better` /
:func:`rank` compare points feasibility first; ``docs/extending.md`` shows a solver written with them.
"""

from ..budget import BudgetExhausted, RowBudget
from .base import LowerSolution, LowerSolver, better, prepare, rank
from .de import DifferentialEvolution
from .local import LocalRefinement
from .lockstep import LockstepRefinement

__all__ = [
    "LowerSolution",
    "LowerSolver",
    "RowBudget",
    "BudgetExhausted",
    "prepare",
    "better",
    "rank",
    "DifferentialEvolution",
    "LocalRefinement",
    "LockstepRefinement",
    "PymooSolver",
    "default_solver",
    "check_solver",
]


def __getattr__(name: str):
    # pymoo is imported only when its adapter is asked for: most runs never use it.
    if name == "PymooSolver":
        from .pymoo_adapter import PymooSolver

        return PymooSolver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_solver() -> DifferentialEvolution:
    """The recommended lower-level solver: adaptive batched DE finished by a local refinement."""
    return DifferentialEvolution()


def check_solver() -> DifferentialEvolution:
    """A stronger, independent lower-level solver for checking a final answer (the lower-level gap).

    Larger population, tighter tolerances and more patience than :func:`default_solver`, polished; it needs no
    warm start. Its windows are fixed in generations (stagnation 100, epsilon phase 60), not scaled to the
    follower's size: the check measures the runs, and stays the same instrument at every size.
    """
    return DifferentialEvolution(pop_size=50, max_gens=2000, ftol_abs=1e-10, ftol_rel=1e-10, patience=100,
                                 epsilon_gens=60)
