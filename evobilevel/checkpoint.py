"""Checkpoints of a run: the whole state between two generations, written atomically, read back only into the
same run (same problem, algorithm settings, seed and protocol)."""

from __future__ import annotations

import pickle
from pathlib import Path

from ._version import __version__
from .integrality import integrality_record
from .plain import plain
from .result import write_bytes_atomic

__all__ = ["CHECKPOINT_FORMAT_VERSION", "BINDING_ARGUMENTS", "load_checkpoint", "write_checkpoint",
           "check_same_run", "problem_identity"]

CHECKPOINT_FORMAT_VERSION = 4
"""Version of the checkpoint layout; a checkpoint of another version is refused."""

_CHECKPOINT_FORMAT = "evobilevel-checkpoint"

#: Arguments of solve() that change the numbers of a run: a checkpoint only resumes under the same values.
BINDING_ARGUMENTS = ("problem", "algorithm", "seed", "max_ul_evals", "max_ll_evals", "target", "chunk_size")


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`evobilevel.solve`.

    Parameters
    ----------
    path : path

    Returns
    -------
    dict
        ``arguments`` (the run's solve arguments, the problem and algorithm as name and settings),
        ``algorithm_state`` (the algorithm's :attr:`~evobilevel.algorithms.base.Algorithm.state`), ``context``
        (see :meth:`~evobilevel.context.RunContext.state`), ``history`` (list of records), ``generation``,
        ``elapsed`` (seconds), ``finished``, ``message``, ``target_reached``, ``version`` (evobilevel's) and
        ``format_version``.

    Raises
    ------
    FileNotFoundError
    ValueError
        The file is not a checkpoint, or one of another format or evobilevel version (whose algorithms may
        continue differently).
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            data = pickle.load(fh)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a readable checkpoint"
            raise ValueError(f"{path} is not a readable evobilevel checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != _CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not an evobilevel checkpoint")
    if data.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(f"{path} is a checkpoint of format {data.get('format_version')}; this evobilevel reads "
                         f"format {CHECKPOINT_FORMAT_VERSION}")
    if data.get("version") != __version__:
        raise ValueError(f"{path} was written by evobilevel {data.get('version')}, this is {__version__}: "
                         "a resumed run would not be the same run")
    return data


def write_checkpoint(path, state: dict) -> None:
    """Pickle ``state`` to ``path`` through a temporary file in the same folder and a rename (atomic)."""
    import cloudpickle  # pickles states that hold user objects with lambdas; the output loads with pickle

    data = {"format": _CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION, "version": __version__,
            **state}
    try:
        payload = cloudpickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise ValueError(f"cannot write the checkpoint {path}: the run's state does not pickle "
                         f"({type(exc).__name__}: {exc})") from exc
    write_bytes_atomic(path, payload)


def problem_identity(problem) -> dict:
    """What identifies a problem instance without its functions: name, sizes, settings and bounds, and, where it
    has them, its integrality masks and its followers' names and sizes."""
    identity = {
        "name": problem.name,
        "ul_dim": problem.ul_dim,
        "ll_dim": problem.ll_dim,
        "settings": problem.settings,
        "ul_bounds": problem.ul_bounds,
        "ll_bounds": problem.ll_bounds,
    }
    integrality = integrality_record(problem)
    if integrality is not None:
        identity["integrality"] = integrality
    followers = getattr(problem, "follower_set", None)
    if followers is not None:
        identity["followers"] = [{"name": name, "ll_dim": own.ll_dim}
                                 for name, own in zip(followers.names, followers.problems)]
    return plain(identity)


def check_same_run(saved: dict, now: dict, path) -> None:
    """Raise ValueError naming every binding argument in which this call differs from the checkpointed run."""
    differences = []
    for key in BINDING_ARGUMENTS:
        was, is_now = saved.get(key), now[key]
        if key == "algorithm" and was["name"] != is_now["name"]:
            # Settings of two different algorithms differ everywhere; the names say it all.
            was, is_now = was["name"], is_now["name"]
        if was != is_now:
            differences.append(f"{key}: {_difference(was, is_now)}")
    if differences:
        raise ValueError(f"cannot resume from {path}: this call differs from the checkpointed run in "
                         + "; ".join(differences))


def _difference(saved, now) -> str:
    """``checkpoint X, now Y``, narrowed to the differing entries where both are dicts."""
    if isinstance(saved, dict) and isinstance(now, dict):
        keys = [k for k in {**saved, **now} if saved.get(k) != now.get(k)]
        return ", ".join(f"{k} {_difference(saved.get(k), now.get(k))}" for k in keys)
    return f"checkpoint {saved!r}, now {now!r}"
