"""The batch layer: bounded async concurrency, streamed input, resumable result files,
the run fingerprint and progress. It knows nothing of reward models: callers pass the
async work to run (`run_batch`, `write_results`).
"""

from .progress import BatchProgress
from .results import (
    ResultWriter,
    check_output_path,
    check_same_run,
    is_finished,
    load_done_ids,
    read_results,
    run_fingerprint,
)
from .run import RowTally, run_batch, write_results
from .sources import BadRow, read_rows, row_id

__all__ = [
    "run_batch",
    "write_results",
    "RowTally",
    "read_rows",
    "BadRow",
    "row_id",
    "ResultWriter",
    "read_results",
    "load_done_ids",
    "is_finished",
    "check_output_path",
    "run_fingerprint",
    "check_same_run",
    "BatchProgress",
]
