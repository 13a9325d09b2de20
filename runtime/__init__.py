"""ukernels.runtime: planning a dispatch, packing, the epilogue description,
and executing dispatches on the persistent thread pool."""
from ukernels.runtime.threads import get_num_threads, set_num_threads

__all__ = ["get_num_threads", "set_num_threads"]
