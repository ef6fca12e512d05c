"""Channels: sockets from the run's process to threads of the dask workers, for parts of batches.

An actor's call passes through both sides' event loops and dask's bookkeeping of futures: on a two-core machine
hosting eight workers, a round of eight trivial calls took about 4 ms, against 0.1-0.4 ms for the same round of
pickled messages over plain sockets. Where a batch of a costly black box is spread over the workers every few
milliseconds (BLEAQ's refinements and final check send a few hundred such rounds a run), that difference is a large
part of the run. So the spreader asks each worker (through dask, ``Client.run``) to listen on a port of its own
host for as many connections as the worker has threads (a dask worker runs a task on each of its threads; so does
it evaluate a part on each); a thread there serves each connection and ends when it closes.

Each message is a length (8 bytes) and a pickle. The worker unpickles nothing before the connection has presented
the token the run sent it through dask, so the port gives no one else a way in; the messages themselves are not
encrypted, which is why channels are opened only to clusters whose own connections are plain TCP (a cluster with
TLS gets the actors). A worker that cannot be reached this way leaves the spreader to the actors.
"""

from __future__ import annotations

import hmac
import pickle
import secrets
import socket
import struct
import threading
import time

from .spread import PartEvaluator

__all__ = ["Channel", "open_channels"]

#: Bytes of the token a connection presents before the worker reads anything else from it.
_TOKEN_BYTES = 32
#: Seconds a worker listens for the run's connections before it gives up and closes the port.
_LISTEN_SECONDS = 60.0
#: Seconds a connection may take to present its token: a stranger that sends nothing does not hold the port longer.
_TOKEN_SECONDS = 5.0
_HEADER = struct.Struct("!Q")
#: The problems this worker process keeps for its channels, by key, each with the number of channels holding it: the
#: channels of one worker (one per thread) share one copy, dropped when the last of them closes.
_KEPT: dict[str, list] = {}
_KEPT_LOCK = threading.Lock()


class ChannelError(RuntimeError):
    """A worker could not carry out a call (the message names the worker's exception)."""


class Channel:
    """The run's end of one worker's channel: calls a method of the worker's :class:`PartEvaluator`.

    Parameters
    ----------
    sock : socket.socket
        A connected socket that has presented the worker's token.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def send(self, method: str, arguments: tuple) -> None:
        """Ask the worker to call ``method(*arguments)``; the answer is read by :meth:`receive`."""
        _send(self.sock, pickle.dumps((method, arguments), protocol=pickle.HIGHEST_PROTOCOL))

    def receive(self, timeout: float | None = None):
        """The answer to the call sent last: its result, or :class:`ChannelError` where the call raised. A worker
        that does not answer within ``timeout`` seconds (None: wait as long as it takes) raises ``TimeoutError``, one
        that has gone ``ConnectionError`` (both ``OSError``)."""
        self.sock.settimeout(timeout)
        done, result = pickle.loads(_receive(self.sock))
        if not done:
            raise ChannelError(result)
        return result

    def close(self) -> None:
        """Close the socket: the worker's thread ends and lets go of the problems it held."""
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - already closed
            pass


class _SharedEvaluator(PartEvaluator):
    """A channel's :class:`PartEvaluator`, whose problems are kept once per worker process (in ``_KEPT``)."""

    def keep(self, key: str, payload: bytes) -> None:
        with _KEPT_LOCK:
            entry = _KEPT.get(key)
            if entry is None:
                entry = _KEPT[key] = [pickle.loads(payload), 0]
            if key not in self.problems:
                entry[1] += 1
            self.problems[key] = entry[0]

    def release(self) -> None:
        """Let go of the problems this channel holds (the last channel holding one drops it)."""
        with _KEPT_LOCK:
            for key in self.problems:
                entry = _KEPT[key]
                entry[1] -= 1
                if entry[1] == 0:
                    del _KEPT[key]
        self.problems.clear()


def open_channels(client, threads: dict[str, int], timeout: float) -> list[Channel] | None:
    """``threads[worker]`` channels to each worker (addresses as the scheduler knows them), in their order, or None
    where a worker cannot listen or be reached from here within ``timeout`` seconds, or the cluster's connections
    are not plain TCP."""
    workers = list(threads)
    if not workers or not all(w.startswith("tcp://") for w in workers) or client.security.require_encryption:
        return None
    token = secrets.token_bytes(_TOKEN_BYTES)
    channels: list[Channel] = []
    try:
        addresses = client.run(_listen, token, threads, workers=workers)
        for worker in workers:
            address = addresses.get(worker)
            if address is None:
                raise OSError(f"worker {worker} cannot listen")
            for _ in range(max(1, threads[worker])):
                sock = socket.create_connection(address, timeout=timeout)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a part is one small message each way
                sock.sendall(token)
                channels.append(Channel(sock))
        return channels
    except Exception:  # noqa: BLE001 - any failure: the actors serve
        for channel in channels:
            channel.close()
        return None


def _listen(token: bytes, threads: dict[str, int], dask_worker=None) -> tuple[str, int] | None:
    """In a worker (through ``Client.run``, which passes the worker as ``dask_worker``): listen on a free port of
    the worker's host and serve, each in a thread, the first ``threads[address]`` connections (one where the
    worker's address is not there) that present ``token``. Returns the address, or None where the worker cannot
    listen."""
    from distributed.comm import get_address_host

    try:
        host = get_address_host(dask_worker.address)
        listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except Exception:  # noqa: BLE001 - no port here: the run falls back to the actors
        return None
    count = max(1, threads.get(dask_worker.address, 1))
    threading.Thread(target=_accept, args=(listener, token, count), daemon=True, name="evobilevel-channel").start()
    return host, listener.getsockname()[1]


def _accept(listener: socket.socket, token: bytes, count: int) -> None:
    """Accept connections until ``count`` have presented ``token`` (or the time to listen runs out); serve the last
    of them here and the others each in a thread of its own."""
    deadline = time.monotonic() + _LISTEN_SECONDS
    accepted: list[socket.socket] = []
    with listener:
        while len(accepted) < count and (left := deadline - time.monotonic()) > 0:
            listener.settimeout(left)
            try:
                sock, _ = listener.accept()
            except OSError:
                break
            sock.settimeout(min(left, _TOKEN_SECONDS))
            try:
                presented = _receive_exactly(sock, _TOKEN_BYTES)
            except OSError:
                presented = b""
            if not hmac.compare_digest(presented, token):
                sock.close()
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            accepted.append(sock)
            if len(accepted) < count:
                threading.Thread(target=_serve_and_close, args=(sock,), daemon=True,
                                 name="evobilevel-channel").start()
    if len(accepted) == count:
        _serve_and_close(accepted[-1])


def _serve_and_close(sock: socket.socket) -> None:
    with sock:
        _serve(sock)


def _serve(sock: socket.socket) -> None:
    """Answer calls until the run closes the connection."""
    evaluator = _SharedEvaluator()
    try:
        _answer_calls(sock, evaluator)
    finally:
        evaluator.release()


def _answer_calls(sock: socket.socket, evaluator: _SharedEvaluator) -> None:
    """Read each call, carry it out and send its answer, until the connection closes."""
    while True:
        try:
            method, arguments = pickle.loads(_receive(sock))
        except (OSError, EOFError):
            return
        try:
            answer = (True, getattr(evaluator, method)(*arguments))
            message = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - the run learns what failed, by name
            message = pickle.dumps((False, f"{type(error).__name__}: {error}"), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _send(sock, message)
        except OSError:
            return


def _send(sock: socket.socket, message: bytes) -> None:
    sock.sendall(_HEADER.pack(len(message)) + message)


def _receive(sock: socket.socket) -> bytes:
    (size,) = _HEADER.unpack(_receive_exactly(sock, _HEADER.size))
    return _receive_exactly(sock, size)


def _receive_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock``; a connection closed before they came raises ``ConnectionError``."""
    buffer = bytearray(size)
    view = memoryview(buffer)
    received = 0
    while received < size:
        n = sock.recv_into(view[received:])
        if n == 0:
            raise ConnectionError("the connection closed")
        received += n
    return bytes(buffer)
