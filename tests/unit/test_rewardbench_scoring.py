"""icrm's RewardBench (v1) scoring against the `rewardbench` package's own code and constants
(read from its source: `tests.official`)."""

import ast
import random

import pytest

from icrm.evaluation.base import longer
from icrm.evaluation.rewardbench import RewardBench, rewardbench_constants, section_scores
from icrm.rm_types import INDIVIDUAL, PAIRWISE
from tests.official import needs_rewardbench, package_definitions, package_source


def package_constants():
    values = {}
    for node in ast.parse(package_source("constants.py")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("EXAMPLE_COUNTS", "SUBSET_MAPPING"):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values["EXAMPLE_COUNTS"], values["SUBSET_MAPPING"]


def package_calculate_scores_per_section():
    return package_definitions("utils.py", ("calculate_scores_per_section",))["calculate_scores_per_section"]


@needs_rewardbench
def test_shipped_constants_equal_the_packages():
    assert rewardbench_constants() == package_constants()


@needs_rewardbench
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


def pair_score(records, rm_type=PAIRWISE):
    row = {"id": "1", "subset": "alpacaeval-easy", "chosen": "long answer", "rejected": "short"}
    return RewardBench().score(row, records, rm_type)


def test_row_scores_follow_the_generative_script():
    # Chosen is A as given; a verdict told back in that orientation.
    assert [pair_score({"pair": {"choice": c}}).score for c in ("A++", "A+", "A=B", "B+", "B++", None)] \
        == [1, 1, 0.5, 0, 0, 0.5]
    assert pair_score({"pair": {"choice": None}}).parse_failure and pair_score({"pair": {"choice": "A=B"}}).tie
    # Both orders: their mean, consistent only when they agree.
    both = pair_score({"pair": {"choice": "A=B", "order_verdicts": {"AB": "A+", "BA": "B+"}}})
    assert (both.score, both.consistent) == (0.5, False)
    assert pair_score({"pair": {"choice": "A+", "order_verdicts": {"AB": "A+", "BA": "A++"}}}).consistent
    individual = [pair_score({"chosen": {"score": c}, "rejected": {"score": r}}, INDIVIDUAL)
                  for c, r in ((8, 3), (3, 8), (5, 5), (None, 5))]
    assert [s.score for s in individual] == [1, 0, 0.5, 0.5]
    assert individual[2].tie and individual[3].parse_failure
    assert (longer("long answer", "short"), longer("a", "bb"), longer("ab", "cd")) == (1, 0, 0.5)
