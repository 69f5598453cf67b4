"""Evaluate an in-context reward model on RewardBench (the original IC-RM script's flags).

Same as `icrm eval rewardbench`; e.g.

    python scripts/test_on_rewardbench.py --data ../shared/data/pairwise/llmbar.jsonl --rm_type pairwise
    python scripts/test_on_rewardbench.py --dataset allenai/reward-bench --split filtered \\
        --model_name meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo --engine together --num_shots 3

`--num_proc` is accepted as the original's name for `--concurrency`.
"""

from __future__ import annotations

import sys

from icrm.cli import main

if __name__ == "__main__":
    main(["eval", "rewardbench", *(a if a != "--num_proc" else "--concurrency" for a in sys.argv[1:])])
