"""The batch layer: bounded async concurrency, streamed input, the resumable run (its
results file, fingerprint and executor seam) and progress. It knows nothing of reward
models: callers pass the async work to run (`run_batch`) and the executor that judges a
run's entries (`resume`).
"""

from .progress import BatchProgress, RowTally
from .results import ResultsFile, check_output_path, check_same_run, is_finished, read_results, run_fingerprint
from .resume import Entry, Executor, RowRecorder, RunTally, record_rows, resume
from .run import DEFAULT_CONCURRENCY, run_batch
from .sources import BadRow, read_rows, row_id

__all__ = [
    "run_batch",
    "DEFAULT_CONCURRENCY",
    "RowTally",
    "read_rows",
    "BadRow",
    "row_id",
    "ResultsFile",
    "RowRecorder",
    "Entry",
    "Executor",
    "RunTally",
    "resume",
    "record_rows",
    "read_results",
    "is_finished",
    "check_output_path",
    "run_fingerprint",
    "check_same_run",
    "BatchProgress",
]
