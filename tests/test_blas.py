"""The BLAS thread limit of the local searches."""

from __future__ import annotations

import scipy.optimize  # noqa: F401 - loads scipy's BLAS too, as the local searches do
from threadpoolctl import threadpool_info

from evobilevel.blas import single_blas_thread


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_single_blas_thread_limits_and_restores():
    before = _blas_threads()
    for _ in range(2):  # the kept controller works on every use, not just the first
        with single_blas_thread():
            assert _blas_threads() and set(_blas_threads()) == {1}
        assert _blas_threads() == before
