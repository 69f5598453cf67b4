"""Evaluation of reward models: RewardBench, scored the official way."""

from .aggregate import section_scores
from .rewardbench import evaluate, format_table, load_rows

__all__ = ["evaluate", "format_table", "load_rows", "section_scores"]
