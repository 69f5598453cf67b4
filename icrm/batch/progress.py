"""Counting a batch's result rows (`RowTally`) and showing them (`BatchProgress`, tqdm)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm.auto import tqdm

from ..engines.usage import UsageTotals

__all__ = ["RowTally", "BatchProgress"]


@dataclass
class RowTally:
    """Counts of result rows: how many, how many without an answer (``errors``) or
    without a verdict (``parse_failures``), and their token usage.

    A row is a dict with ``error`` / ``error_kind``, ``usage`` and ``cache_hit`` (as
    `icrm.scoring.result_row` writes them).
    """

    rows: int = 0
    errors: int = 0
    parse_failures: int = 0
    usage: UsageTotals = field(default_factory=UsageTotals)

    @property
    def failed(self) -> int:
        """Rows without a verdict."""
        return self.errors + self.parse_failures

    def add(self, row: Mapping[str, Any]) -> None:
        """Count one row."""
        self.rows += 1
        kind = row.get("error_kind")
        self.parse_failures += kind == "parse"
        self.errors += kind is not None and kind != "parse"
        self.usage.add(row.get("usage"), cache_hit=bool(row.get("cache_hit")), error=kind is not None)



class BatchProgress:
    """A tqdm bar for a batch: items/s, prompt and generated tokens/s, cache hits, errors.

    Args:
        total: items expected, or None when unknown (a streamed input).
        enabled: True = always show, False = never, None = only on a TTY (tqdm's rule).
        tally: the counts it shows (`icrm.batch.RowTally`), updated by its owner.
    """

    def __init__(self, total: int | None, enabled: bool | None, tally: RowTally) -> None:
        self.bar = tqdm(total=total, unit="item", disable=None if enabled is None else not enabled, dynamic_ncols=True)
        self.tally = tally

    def update(self) -> None:
        """Show one more finished item."""
        usage = self.tally.usage
        elapsed = max(self.bar.format_dict.get("elapsed", 0.0), 1e-9)
        self.bar.set_postfix(
            prompt_tok_s=f"{usage.prompt_tokens / elapsed:.0f}", gen_tok_s=f"{usage.completion_tokens / elapsed:.0f}",
            cache_hits=usage.cache_hits, errors=self.tally.failed, refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
