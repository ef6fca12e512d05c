"""Parallel work: batches of lower-level solves (:mod:`.engine`), as row tasks or as evaluation tasks spread over
the workers (:mod:`.spread`), independent tasks for benchmark grids and dask clusters (:mod:`.tasks`). The only
package that imports joblib (and dask), each when it is first used."""

from .engine import TASK_KINDS, LowerEngine
from .tasks import ProblemNotPicklable, check_n_jobs, cluster_backend, run_tasks, send_module_by_value

__all__ = ["LowerEngine", "TASK_KINDS", "ProblemNotPicklable", "check_n_jobs", "cluster_backend", "run_tasks",
           "send_module_by_value"]
