"""Independent tasks on the workers (benchmark grids), a dask cluster as joblib's backend, and the checks that a
problem can travel to worker processes."""

from __future__ import annotations

import pickle
from contextlib import contextmanager

import numpy as np

__all__ = ["ProblemNotPicklable", "check_picklable", "send_module_by_value", "run_tasks", "cluster_backend",
           "check_n_jobs"]


class ProblemNotPicklable(ValueError):
    """A problem (or solver) could not be sent to worker processes."""


def check_picklable(problem, solver) -> None:
    """Fail early, with the fix named, when the problem cannot travel to worker processes."""
    import cloudpickle

    # What pickling raises for an object that cannot travel (locks, files: TypeError; local classes: others).
    errors = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError)
    for what, obj in (("problem", problem), ("lower-level solver", solver)):
        try:
            cloudpickle.dumps(obj)
        except errors as exc:
            # Name the user function that does not pickle, when it is one of them.
            culprit = ""
            functions = obj.functions() if what == "problem" else {}
            for label, function in functions.items():
                try:
                    cloudpickle.dumps(function)
                except errors:
                    culprit = f" (its {label} function {getattr(function, '__qualname__', function)!r})"
                    break
            raise ProblemNotPicklable(
                f"the {what} {getattr(obj, 'name', type(obj).__name__)!r}{culprit} cannot be sent to worker "
                f"processes for n_jobs != 1 ({type(exc).__name__}: {exc}). Its functions must pickle with "
                "cloudpickle: module-level functions, lambdas and closures over plain data do; a function that "
                "captures a lock, an open file, a connection or a thread does not. Create such an object inside "
                "the function (or once per process, in a module-level cache), or run with n_jobs=1."
            ) from exc


def send_module_by_value(module) -> None:
    """Let worker processes receive the functions of ``module`` by value.

    A module loaded from a file path cannot be imported by name in a worker, so its functions are pickled by
    value instead of by reference.
    """
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)


def _indexed_call(function, index: int, args: tuple):
    """Run one task and tag its value with the task's position, so unordered completion can be matched up."""
    return index, function(*args)


def run_tasks(function, task_args, n_jobs: int = 1):
    """Run independent tasks ``function(*args)``, inline or through joblib, yielding each result as it finishes.

    Parameters
    ----------
    function : callable
        A module-level function (worker processes receive it by reference, or by value for file-loaded modules).
    task_args : sequence of tuple
        The positional arguments of each task.
    n_jobs : int
        1 runs the tasks inline, in order, without joblib; otherwise joblib's ``n_jobs`` (-1 = all cores), with
        whatever backend joblib is configured with.

    Yields
    ------
    index : int
        The task's position in ``task_args``.
    value
        What ``function`` returned.

    Notes
    -----
    Results arrive in completion order, so a caller can record each task as soon as it is done; tasks are sent
    to workers one at a time (``batch_size=1``) so that few tasks are in flight at once. An exception raised by a
    task stops the iteration; tasks that must not stop the others should catch their own errors.
    """
    check_n_jobs(n_jobs)
    tasks = [tuple(args) for args in task_args]
    if n_jobs == 1 or len(tasks) <= 1:
        for index, args in enumerate(tasks):
            yield index, function(*args)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=int(n_jobs), return_as="generator_unordered", batch_size=1, pre_dispatch="n_jobs")
    yield from parallel(delayed(_indexed_call)(function, index, args) for index, args in enumerate(tasks))


@contextmanager
def cluster_backend(address: str):
    """Send the joblib work done inside the ``with`` block to the dask cluster whose scheduler is at ``address``.

    Connects a ``dask.distributed.Client`` and makes dask joblib's backend for the block, so that
    :func:`evobilevel.solve` with ``n_jobs != 1`` solves its lower levels on the cluster's workers and
    :func:`run_tasks` (benchmark grids) runs its tasks there. The workers need evobilevel (and the problem's
    modules) installed; problems loaded from a file travel by value.

    Parameters
    ----------
    address : str
        The scheduler's address, e.g. ``"tcp://scheduler:8786"``.

    Yields
    ------
    dask.distributed.Client

    Raises
    ------
    ImportError
        When dask.distributed is not installed (the ``distributed`` extra).
    OSError
        When no scheduler answers at ``address``.
    """
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ImportError("running on a dask cluster needs dask.distributed, the 'distributed' extra: "
                          "pip install 'evobilevel[distributed]'") from exc
    from joblib import parallel_config

    try:
        client = Client(address, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise OSError(f"cannot connect to the dask scheduler at {address!r} ({type(exc).__name__}: {exc})") from exc
    with client, parallel_config(backend="dask", client=client):
        yield client


def check_n_jobs(n_jobs) -> None:
    """Raise ValueError unless ``n_jobs`` is a positive integer or -1."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
