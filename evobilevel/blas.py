"""One BLAS thread for the small linear algebra of the local searches.

scipy's quasi-Newton updates call BLAS on vectors of ``ll_dim`` entries: threads only add synchronisation, which
costs several times the work itself when the other cores are busy. ``threadpoolctl.threadpool_limits`` finds the
loaded BLAS libraries again on every call (about 0.2 ms, more in a process that has loaded many libraries, and a
run enters the limit hundreds of times), so one controller is made at the first use and kept. Setting and restoring
the limit still costs about 0.1 ms, and the response models enter it thousands of times a run (once per fit), so a
limit entered inside another in the same thread does nothing: the outer one is in force already.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

from threadpoolctl import ThreadpoolController

__all__ = ["single_blas_thread"]

_controller: ThreadpoolController | None = None
_inside = threading.local()  # per thread: how many limits are open


@contextmanager
def single_blas_thread():
    """A context manager limiting the BLAS libraries loaded at the first call to one thread; free inside another
    such limit of the same thread."""
    global _controller
    depth = getattr(_inside, "depth", 0)
    _inside.depth = depth + 1
    try:
        if depth:
            yield  # the outer limit is in force
        else:
            if _controller is None:
                # By the first use numpy's and scipy's BLAS are loaded (scipy.optimize is imported by the callers).
                _controller = ThreadpoolController()
            with _controller.limit(limits=1, user_api="blas"):
                yield
    finally:
        _inside.depth = depth
