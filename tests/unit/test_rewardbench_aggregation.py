"""icrm's RewardBench aggregation against the `rewardbench` package's own code and constants.

The package cannot be imported without torch, so its source is read: constants with
`ast.literal_eval`, `calculate_scores_per_section` compiled from its own definition.
CI installs it with `pip install --no-deps rewardbench==0.1.4`.
"""

import ast
import importlib.util
import random
from pathlib import Path

import pytest

from icrm.evaluation.aggregate import (
    individual_outcome,
    length_baseline,
    pairwise_outcome,
    rewardbench_constants,
    section_scores,
)

SPEC = importlib.util.find_spec("rewardbench")
needs_package = pytest.mark.skipif(SPEC is None, reason="rewardbench is not installed: pip install --no-deps rewardbench==0.1.4")


def package_source(name):
    return (Path(next(iter(SPEC.submodule_search_locations))) / name).read_text()


def package_constants():
    values = {}
    for node in ast.parse(package_source("constants.py")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("EXAMPLE_COUNTS", "SUBSET_MAPPING"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values["EXAMPLE_COUNTS"], values["SUBSET_MAPPING"]


def package_calculate_scores_per_section():
    tree = ast.parse(package_source("utils.py"))
    [function] = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "calculate_scores_per_section"]
    namespace = {}
    exec(compile(ast.Module(body=[function], type_ignores=[]), "rewardbench/utils.py", "exec"), namespace)
    return namespace["calculate_scores_per_section"]


@needs_package
def test_shipped_constants_equal_the_packages():
    assert rewardbench_constants() == package_constants()


@needs_package
@pytest.mark.parametrize("seed", range(5))
def test_section_scores_match_rewardbench_on_the_same_rows(seed):
    rng = random.Random(seed)
    counts, mapping = package_constants()
    every = [s for subsets in mapping.values() for s in subsets]
    present = rng.sample(every, rng.randint(3, len(every)))  # some sections partly or wholly absent
    # Per-row results (1 / 0 / 0.5) per subset, aggregated to accuracies as both tools do.
    rows = {s: [rng.choice([1.0, 0.0, 0.5]) for _ in range(rng.randint(5, 40))] for s in present}
    accuracies = {s: sum(r) / len(r) for s, r in rows.items()}
    theirs = package_calculate_scores_per_section()(counts, mapping, accuracies)
    ours = section_scores(accuracies)
    for section, score in theirs.items():
        if any(s in accuracies for s in mapping[section]):
            assert ours[section] == pytest.approx(score, abs=1e-12)
        else:  # RewardBench reports an absent section as 0; icrm leaves it out
            assert section not in ours and score == 0
    assert ours["overall"] == pytest.approx(sum(v for k, v in ours.items() if k != "overall") / (len(ours) - 1))


def test_math_prm_is_weighted_like_all_code_subsets_together():
    counts, mapping = rewardbench_constants()
    code = [s for s in mapping["Reasoning"] if s.startswith("hep-")]
    assert counts["math-prm"] == sum(counts[s] for s in code)
    reasoning = section_scores({"math-prm": 1.0, **{s: 0.0 for s in code}})["Reasoning"]
    assert reasoning == pytest.approx(0.5)


def test_row_outcomes_follow_the_generative_script():
    assert [pairwise_outcome(c, True).score for c in ("A++", "A+", "A=B", "B+", "B++", None)] == [1, 1, 0.5, 0, 0, 0.5]
    assert [pairwise_outcome(c, False).score for c in ("A++", "B+")] == [0, 1]
    assert pairwise_outcome(None, True).parse_failure and pairwise_outcome("A=B", True).tie
    assert pairwise_outcome("A=B", True).strict == 0
    assert [individual_outcome(*s).score for s in ((8, 3), (3, 8), (5, 5), (None, 5))] == [1, 0, 0.5, 0.5]
    assert (length_baseline("long answer", "short"), length_baseline("a", "bb"), length_baseline("ab", "cd")) == (1, 0, 0.5)
