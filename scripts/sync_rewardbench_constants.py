"""Write icrm/evaluation/rewardbench_constants.json from the installed `rewardbench` package.

Usage: pip install --no-deps rewardbench==0.1.4 && python scripts/sync_rewardbench_constants.py

RewardBench's EXAMPLE_COUNTS and SUBSET_MAPPING (rewardbench/constants.py) define the
official section scores. icrm ships them as JSON, generated here rather than typed by
hand; tests/unit/test_rewardbench_aggregation.py checks the JSON still equals the package.
The package is read as source (ast), not imported: importing it needs torch.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parent.parent / "icrm" / "evaluation" / "rewardbench_constants.json"
NAMES = ("EXAMPLE_COUNTS", "SUBSET_MAPPING")


def read_constants() -> dict[str, object]:
    """EXAMPLE_COUNTS and SUBSET_MAPPING as literals from the installed package's source."""
    spec = importlib.util.find_spec("rewardbench")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("rewardbench is not installed: pip install --no-deps rewardbench==0.1.4")
    source = (Path(next(iter(spec.submodule_search_locations))) / "constants.py").read_text()
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and getattr(node.targets[0], "id", None) in NAMES:
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def main() -> None:
    values = read_constants()
    payload = {"source": f"rewardbench {importlib.metadata.version('rewardbench')}, rewardbench/constants.py", **values}
    TARGET.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
