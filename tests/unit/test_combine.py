"""Voting over samples and combining the two orders of a pair: pure functions."""

import pytest

from icrm.feedback import IndividualFeedback, PairwiseFeedback
from icrm.methods.combine import vote
from icrm.position import combine_orders, flip
from icrm.methods.logprob import label_distribution
from icrm.rm_types import INDIVIDUAL, PAIRWISE


def pair(choice, **extra):
    return PairwiseFeedback(choice=choice, **extra)


def test_vote_takes_the_majority_choice_and_reports_agreement():
    voted = vote(PAIRWISE, [pair("A+"), pair("A+"), pair("B+"), PairwiseFeedback(parse_error="x")])
    assert (voted.choice, voted.num_samples, voted.agreement) == ("A+", 4, pytest.approx(2 / 3))
    assert voted.sample_verdicts == ["A+", "A+", "B+", None]


def test_vote_breaks_a_tie_toward_the_mean_preference():
    # A++ and B+ twice each, A=B once: mean reward 0.6, nearer B+ (0.25) than A++ (1.0).
    assert vote(PAIRWISE, [pair("A++"), pair("A++"), pair("B+"), pair("B+"), pair("A=B")]).choice == "B+"


def test_vote_averages_scores():
    voted = vote(INDIVIDUAL, [IndividualFeedback(score=s) for s in (6, 7, 9)])
    assert (voted.score, voted.expected_score) == (7, pytest.approx(22 / 3))
    assert voted.agreement == pytest.approx(1 / 3)


def test_vote_with_no_verdict_keeps_the_first_error():
    voted = vote(INDIVIDUAL, [IndividualFeedback(parse_error="cut", parse_error_reason="truncated")] * 2)
    assert (voted.ok, voted.parse_error_reason, voted.num_samples) == (False, "truncated", 2)


def test_vote_averages_distributions():
    first = {**{str(s): 0.0 for s in range(1, 11)}, "7": 1.0}
    second = {**{str(s): 0.0 for s in range(1, 11)}, "9": 1.0}
    voted = vote(INDIVIDUAL, [IndividualFeedback(score=7, probabilities=first),
                              IndividualFeedback(score=9, probabilities=second)])
    assert voted.probabilities["7"] == voted.probabilities["9"] == 0.5 and voted.expected_score == pytest.approx(8)


@pytest.mark.parametrize(("as_given", "swapped", "choice", "consistent"), [
    ("A+", "A+", "A+", True),
    ("A++", "A+", "A+", True),      # same side, the weaker
    ("A+", "B+", "A=B", False),     # opposite sides: a tie
    ("A=B", "B++", "A=B", False),
    ("A=B", "A=B", "A=B", True),
])
def test_combine_orders_votes_with_ties(as_given, swapped, choice, consistent):
    combined = combine_orders(PAIRWISE, pair(as_given), pair(swapped))
    assert (combined.choice, combined.position_consistent) == (choice, consistent)
    assert combined.order_verdicts == {"AB": as_given, "BA": swapped} and combined.position == "both"


def test_a_judge_that_always_says_a_is_inconsistent_and_a_tie():
    # It says "A+" in both orders; the swapped one, told back, favours B.
    swapped = flip(PAIRWISE, pair("A+"))
    combined = combine_orders(PAIRWISE, pair("A+"), swapped)
    assert (combined.choice, combined.position_consistent) == ("A=B", False)


def test_combine_orders_averages_distributions_and_flips_the_swapped_one():
    given = {"A++": 0.6, "A+": 0.2, "A=B": 0.2, "B+": 0.0, "B++": 0.0}
    swapped_raw = {"A++": 0.0, "A+": 0.0, "A=B": 0.2, "B+": 0.4, "B++": 0.4}  # B (the given A) preferred
    swapped = flip(PAIRWISE, pair("B+", probabilities=swapped_raw, p_a_better=0.2))
    assert swapped.probabilities == {"B++": 0.0, "B+": 0.0, "A=B": 0.2, "A+": 0.4, "A++": 0.4}
    assert swapped.p_a_better == pytest.approx(0.8)
    combined = combine_orders(PAIRWISE, pair("A++", probabilities=given, p_a_better=0.8), swapped)
    assert combined.probabilities["A++"] == pytest.approx(0.5) and combined.choice == "A++"
    assert combined.p_a_better == pytest.approx(0.5 * (1.0 * 0.6 + 0.75 * 0.2 + 0.5 * 0.2) + 0.5 * (0.5 * 0.2 + 0.75 * 0.4 + 1.0 * 0.4))
    assert combined.position_consistent is True


def test_label_distribution_from_completions_logprobs():
    import math
    completions = {"tokens": ["7"], "token_logprobs": [math.log(0.5)],
                   "top_logprobs": [{"7": math.log(0.5), "8": math.log(0.3), " the": math.log(0.2)}]}
    distribution, mass = label_distribution(completions, INDIVIDUAL)
    assert mass == pytest.approx(0.8)
    assert distribution["8"] == pytest.approx(0.625) and distribution["9"] == pytest.approx(0.375)
    assert sum(distribution.values()) == pytest.approx(1.0)
