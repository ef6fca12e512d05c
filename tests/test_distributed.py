"""A dask cluster as joblib's backend: same results as inline, from the API and the command line.

The cluster is a local one with two worker processes; everything that needs it is skipped when dask.distributed
(the ``distributed`` extra) is not installed.
"""

from __future__ import annotations

import builtins
import json
import os
import signal
import time

import numpy as np
import pytest

import evobilevel as eb
from evobilevel.algorithms import BLEAQ, Nested
from evobilevel.cli import main
from evobilevel.parallel import cluster_backend

SMALL = eb.benchmarks.get("SMD1", ul_dim=2, ll_dim=3)
SIZE_ARGS = ["--ul-dim", "2", "--ll-dim", "3"]


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as local:
        yield local


def assert_same(a: eb.Result, b: eb.Result) -> None:
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert (a.F, a.f, a.n_ul_evals, a.n_ll_evals, a.ll_gap) == (b.F, b.f, b.n_ul_evals, b.n_ll_evals, b.ll_gap)
    for key in ("best_F", "best_f", "n_ul_evals", "n_ll_evals"):
        assert np.array_equal(a.history.column(key), b.history.column(key), equal_nan=True), key


def lower_points(n: int, seed: int):
    """``n`` random points of SMALL, X (n, 2) and Y (n, 3), and their lower-level values evaluated here."""
    from evobilevel.problem import FailureLog

    rng = np.random.default_rng(seed)
    X, Y = rng.uniform(-1, 1, (n, 2)), rng.uniform(-1, 1, (n, 3))
    return X, Y, SMALL.evaluate_batch("lower", X, Y, FailureLog(np.zeros(n, bool)))


def spread_values(spreader, X, Y):
    """The lower-level values and constraints of SMALL at the rows of X, Y evaluated by ``spreader``."""
    from evobilevel.problem import FailureLog

    values, constraints, _ = spreader.evaluate(SMALL, "lower", X, Y, FailureLog(np.zeros(X.shape[0], bool)))
    return values, constraints


def assert_same_values(results, expected) -> None:
    """Each of ``results`` holds the values and constraints of ``expected``."""
    for values, constraints in results:
        np.testing.assert_array_equal(values, expected[0])
        np.testing.assert_array_equal(constraints, expected[1])


def test_solve_under_joblib_dask_backend_equals_inline(cluster):
    """The user's way: a Client and ``joblib.parallel_config(backend="dask")`` around solve."""
    from distributed import Client
    from joblib import parallel_config

    algo = Nested(pop_size=10, max_generations=6)
    inline = eb.solve(SMALL, algorithm=algo, seed=3, chunk_size=3)
    with Client(cluster.scheduler_address) as client, parallel_config(backend="dask"):
        distributed = eb.solve(SMALL, algorithm=algo, seed=3, n_jobs=2, chunk_size=3)
        assert len(client.scheduler_info()["workers"]) == 2
    assert_same(inline, distributed)


def test_bleaq_through_cluster_backend_equals_inline(cluster):
    algo = BLEAQ(pop_size=12, max_generations=15)
    inline = eb.solve(SMALL, algorithm=algo, seed=5)
    with cluster_backend(cluster.scheduler_address) as client:
        distributed = eb.solve(SMALL, algorithm=algo, seed=5, n_jobs=-1)
        assert sum(client.ncores().values()) == 2
    assert_same(inline, distributed)


def no_channels(monkeypatch) -> None:
    """Make the spreader fall back to the actors, as on a cluster whose workers it cannot reach over plain TCP."""
    from evobilevel.parallel import channel

    monkeypatch.setattr(channel, "open_channels", lambda client, threads, timeout: None)


@pytest.mark.parametrize("route", ["channels", "actors"])
def test_evaluation_tasks_go_to_every_worker_with_the_inline_results(cluster, monkeypatch, route):
    """Every batch spread (``tasks="evaluations"``) through the channels or the actors, one per worker: same run as
    inline."""
    from evobilevel.parallel.spread import Spreader

    if route == "actors":
        no_channels(monkeypatch)
    methods, routes = [], set()
    call = Spreader._call

    def counted(self, method, arguments, timeout=None):
        methods.extend([method] * len(arguments))
        routes.add("channels" if self.channels is not None else "actors" if self.actors is not None else "tasks")
        return call(self, method, arguments, timeout)

    monkeypatch.setattr(Spreader, "_call", counted)
    algo = BLEAQ(pop_size=8, max_generations=4)
    inline = eb.solve(SMALL, algorithm=algo, seed=7)
    with cluster_backend(cluster.scheduler_address):
        spread = eb.solve(SMALL, algorithm=algo, seed=7, n_jobs=-1, tasks="evaluations")
    assert_same(inline, spread)
    assert routes == {route}
    assert methods.count("keep") == 2  # the problem travels once to each of the two workers
    assert methods.count("evaluate") > 100


@pytest.mark.parametrize("route", ["channels", "actors"])
def test_spreader_sends_tasks_once_a_worker_cannot_be_reached(cluster, monkeypatch, route):
    from evobilevel.parallel.spread import Spreader

    if route == "actors":
        no_channels(monkeypatch)
    X, Y, expected = lower_points(7, seed=0)
    with cluster_backend(cluster.scheduler_address):
        spreader = Spreader(-1)
        assert len(getattr(spreader, route)) == 2
        first = spread_values(spreader, X, Y)

        def unreachable(self, method, arguments, timeout=None):
            raise OSError("Unable to contact the worker")

        monkeypatch.setattr(Spreader, "_call", unreachable)
        second = spread_values(spreader, X, Y)
        assert spreader.channels is None and spreader.actors is None
        spreader.close()
    assert_same_values([first, second], expected)


def _channel_threads() -> int:
    import threading

    return sum(thread.name == "evobilevel-channel" for thread in threading.enumerate())


def test_the_workers_are_called_through_channels_where_they_can_be_reached(cluster):
    from evobilevel.parallel.spread import Spreader

    X, Y, expected = lower_points(7, seed=4)
    with cluster_backend(cluster.scheduler_address) as client:
        spreader = Spreader(-1)
        assert len(spreader.channels) == 2 and spreader.actors is None and spreader._direct is None
        assert all(n >= 1 for n in client.run(_channel_threads).values())
        values = spread_values(spreader, X, Y)
        spreader.close()
        assert spreader.channels is None
        for _ in range(50):  # each worker's thread ends once it sees the connection closed
            if set(client.run(_channel_threads).values()) == {0}:
                break
            time.sleep(0.1)
        assert set(client.run(_channel_threads).values()) == {0}
    assert_same_values([values], expected)


def test_a_channel_serves_only_the_connection_that_presents_the_token(cluster):
    import socket

    from distributed import Client

    from evobilevel.parallel.channel import Channel, ChannelError, _listen

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        worker = next(iter(client.scheduler_info()["workers"]))
        address = client.run(_listen, b"k" * 32, {worker: 1}, workers=[worker])[worker]
        with socket.create_connection(address, timeout=5) as stranger:
            stranger.sendall(b"x" * 32 + b"anything a stranger sends")
            try:
                answer = stranger.recv(1)
            except ConnectionResetError:  # closed with the stranger's bytes unread
                answer = b""
            assert answer == b""  # closed without an answer
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(b"k" * 32)
            channel = Channel(sock)
            channel.send("ping", (7,))
            assert channel.receive(5) == 7
            channel.send("evaluate", ("no such problem", "lower", np.zeros((1, 2)), np.zeros((1, 3))))
            with pytest.raises(ChannelError, match="KeyError"):
                channel.receive(5)
            channel.send("ping", (8,))  # a failed call leaves the channel working
            assert channel.receive(5) == 8


def test_channels_are_not_opened_where_the_cluster_encrypts_its_connections():
    from types import SimpleNamespace

    from evobilevel.parallel.channel import open_channels

    def client(encrypted: bool):
        return SimpleNamespace(security=SimpleNamespace(require_encryption=encrypted))

    assert open_channels(client(True), {"tcp://10.0.0.1:4000": 1}, 1.0) is None
    assert open_channels(client(False), {"tls://10.0.0.1:4000": 1}, 1.0) is None
    assert open_channels(client(False), {}, 1.0) is None


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the worker's own dashboard
def test_a_worker_of_several_threads_gets_a_channel_for_each():
    # As dask runs a task on each thread of a worker, the spreader evaluates a part on each; the actors (one per
    # worker) cut a batch into as many parts as there are workers.
    distributed = pytest.importorskip("distributed")
    from evobilevel.parallel.spread import Spreader

    X, Y, expected = lower_points(9, seed=5)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=3, host="127.0.0.1",
                                  dashboard_address=None) as local, cluster_backend(local.scheduler_address) as client:
        spreader = Spreader(-1)
        assert len(spreader.channels) == spreader.n_workers == 3
        assert set(client.run(_channel_threads).values()) == {3}
        values = spread_values(spreader, X, Y)
        assert set(client.run(_kept_problems).values()) == {(1, 3)}  # one copy, held by the three channels
        spreader.close()
        for _ in range(50):
            if set(client.run(_kept_problems).values()) == {(0, 0)}:
                break
            time.sleep(0.1)
        assert set(client.run(_kept_problems).values()) == {(0, 0)}
    assert_same_values([values], expected)


def _kept_problems() -> tuple[int, int]:
    """In a worker: the problems its channels keep, and how many channels hold them in all."""
    from evobilevel.parallel.channel import _KEPT

    return len(_KEPT), sum(entry[1] for entry in _KEPT.values())


def test_the_actors_are_called_directly_where_the_workers_can_be_reached(cluster, monkeypatch):
    # The run's client goes through the scheduler (dask's default); the spreader's own client calls the workers.
    from evobilevel.parallel.spread import Spreader

    no_channels(monkeypatch)
    X, Y, expected = lower_points(7, seed=2)
    with cluster_backend(cluster.scheduler_address) as client:
        assert not client.direct_to_workers
        spreader = Spreader(-1)
        assert spreader._direct is not None and spreader._direct.direct_to_workers
        assert len(spreader.actors) == 2 and all(actor._client is spreader._direct for actor in spreader.actors)
        values = spread_values(spreader, X, Y)
        spreader.close()
        assert spreader._direct is None
    assert_same_values([values], expected)


def test_the_actors_are_called_through_the_scheduler_where_the_workers_cannot_be_reached(cluster, monkeypatch):
    # The workers do not answer the direct client's first round of calls (behind the scheduler, say).
    from evobilevel.parallel.spread import Spreader

    no_channels(monkeypatch)
    call = Spreader._call

    def direct_unreachable(self, method, arguments, timeout=None):
        if self._direct is not None:
            raise TimeoutError("timed out after 5 s.")
        return call(self, method, arguments, timeout)

    monkeypatch.setattr(Spreader, "_call", direct_unreachable)
    X, Y, expected = lower_points(7, seed=3)
    with cluster_backend(cluster.scheduler_address) as client:
        spreader = Spreader(-1)
        assert spreader._direct is None and len(spreader.actors) == 2
        assert all(actor._client is client for actor in spreader.actors)
        values = spread_values(spreader, X, Y)
        spreader.close()
    assert_same_values([values], expected)


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the worker the nanny starts again
@pytest.mark.parametrize("route", ["channels", "actors"])
def test_spreader_goes_on_with_tasks_when_a_worker_leaves(monkeypatch, route):
    distributed = pytest.importorskip("distributed")
    from evobilevel.parallel.spread import Spreader

    if route == "actors":
        no_channels(monkeypatch)
    X, Y, expected = lower_points(9, seed=1)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=None) as local, cluster_backend(local.scheduler_address) as client:
        spreader = Spreader(-1)
        first = spread_values(spreader, X, Y)
        if route == "actors":
            holder = next(iter(client.who_has(spreader._actor_futures[0]).values()))[0]
        else:  # every worker holds one end of a channel
            holder = next(iter(client.scheduler_info()["workers"]))
        os.kill(client.run(os.getpid, workers=[holder])[holder], signal.SIGKILL)  # its nanny starts another
        time.sleep(1.0)
        second = spread_values(spreader, X, Y)
        assert spreader.channels is None and spreader.actors is None
        spreader.close()
    assert_same_values([first, second], expected)


def test_cli_solve_and_bench_with_scheduler(cluster, tmp_path, capsys):
    solve_args = ["solve", "SMD1", *SIZE_ARGS, "--algorithm", "nested", "--seed", "2", "--max-ul-evals", "120",
                  "--quiet"]
    assert main([*solve_args, "--out", str(tmp_path / "inline.json")]) == 0
    assert main([*solve_args, "--scheduler", cluster.scheduler_address, "--out", str(tmp_path / "dask.json")]) == 0
    inline, distributed = eb.load_result(tmp_path / "inline.json"), eb.load_result(tmp_path / "dask.json")
    assert_same(inline, distributed)
    assert distributed.n_jobs == -1  # --scheduler without --jobs: every worker of the cluster

    bench_args = ["bench", "--problems", "SMD1-SMD2", *SIZE_ARGS, "--algorithms", "nested", "--runs", "2",
                  "--max-ul-evals", "40", "--max-ll-evals", "10000", "--quiet"]
    assert main([*bench_args, "--out", str(tmp_path / "inline")]) == 0
    assert main([*bench_args, "--out", str(tmp_path / "dask"), "--scheduler", cluster.scheduler_address]) == 0
    assert "4 run now" in capsys.readouterr().out
    runs = sorted(p.relative_to(tmp_path / "inline") for p in (tmp_path / "inline").rglob("run*.json"))
    assert len(runs) == 4
    for run in runs:
        a, b = (json.loads((tmp_path / side / run).read_text()) for side in ("inline", "dask"))
        assert (a["x"], a["F"], a["n_ll_evals"], a["history"]["best_F"]) == \
               (b["x"], b["F"], b["n_ll_evals"], b["history"]["best_F"])


def test_unreachable_scheduler_is_a_usage_error(tmp_path, capsys):
    dask = pytest.importorskip("dask")
    pytest.importorskip("distributed")
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["solve", "SMD1", *SIZE_ARGS, "--algorithm", "nested", "--max-ul-evals", "20", "--quiet",
                     "--scheduler", "tcp://127.0.0.1:9"])
    assert code == 2
    assert "cannot connect to the dask scheduler at 'tcp://127.0.0.1:9'" in capsys.readouterr().err


def test_missing_distributed_extra_is_named(monkeypatch, capsys):
    real_import = builtins.__import__

    def without_dask(name, *args, **kwargs):
        if name == "dask" or name.startswith(("dask.", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_dask)
    with pytest.raises(ImportError, match=r"pip install 'evobilevel\[distributed\]'"):
        with cluster_backend("tcp://127.0.0.1:8786"):
            pass
    assert main(["bench", "--problems", "SMD1", "--runs", "1", "--quiet", "--scheduler", "tcp://127.0.0.1:8786",
                 "--out", "unused"]) == 2
    assert "the 'distributed' extra" in capsys.readouterr().err
