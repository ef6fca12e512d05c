"""One BLAS thread for the small linear algebra of the local searches.

scipy's quasi-Newton updates call BLAS on vectors of ``ll_dim`` entries: threads only add synchronisation, which
costs several times the work itself when the other cores are busy. ``threadpoolctl.threadpool_limits`` finds the
loaded BLAS libraries again on every call (about 0.2 ms, more in a process that has loaded many libraries, and a
run enters the limit hundreds of times), so one controller is made at the first use and kept.
"""

from __future__ import annotations

from threadpoolctl import ThreadpoolController

__all__ = ["single_blas_thread"]

_controller: ThreadpoolController | None = None


def single_blas_thread():
    """A context manager limiting the BLAS libraries loaded at the first call to one thread."""
    global _controller
    if _controller is None:
        # By the first use numpy's and scipy's BLAS are loaded (scipy.optimize is imported by the callers).
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
