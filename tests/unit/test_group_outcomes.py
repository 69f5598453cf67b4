"""Bradley–Terry over a group's outcomes (`icrm.groups.outcomes`): worked cases with
closed forms, recovery of a hidden order from sampled outcomes, and the analytic
standard error against the bootstrap's."""

import math
import random

import pytest

from icrm.groups.outcomes import Outcome, bradley_terry, group_rewards, kendall_tau, win_rates


def test_two_responses_three_wins_to_one_is_log_three_apart():
    # The BT maximum-likelihood fit of 3 wins to 1 has θ0 − θ1 = log(3) (alpha is tiny).
    outcomes = [Outcome(0, 1, 1.0)] * 3 + [Outcome(1, 0, 1.0)]
    strengths = bradley_terry(2, outcomes)
    assert strengths[0] - strengths[1] == pytest.approx(math.log(3), abs=0.02)
    assert sum(strengths) == pytest.approx(0.0, abs=1e-9)
    rewards = group_rewards(2, outcomes).rewards
    assert rewards[0] == pytest.approx(0.75, abs=0.01) and rewards[1] == pytest.approx(0.25, abs=0.01)


def test_fractional_outcomes_are_probabilities():
    # p_i = 0.8 on a comparison is 4 wins to 1 (up to the regularisation's prior count,
    # which weighs more against one comparison than against five).
    soft = bradley_terry(2, [Outcome(0, 1, 0.8)] * 5)
    counted = bradley_terry(2, [Outcome(0, 1, 1.0)] * 4 + [Outcome(0, 1, 0.0)])
    assert soft[0] - soft[1] == pytest.approx(math.log(4), abs=0.05)
    assert soft[0] - soft[1] == pytest.approx(counted[0] - counted[1], abs=1e-6)


def test_ties_only_give_every_response_the_middle():
    fitted = group_rewards(4, [Outcome(i, j, 0.5) for i in range(4) for j in range(i + 1, 4)])
    assert all(r == pytest.approx(0.5) for r in fitted.rewards)
    assert fitted.win_rates == (0.5, 0.5, 0.5, 0.5)


def test_a_response_never_compared_is_the_middle_with_the_largest_uncertainty():
    fitted = group_rewards(3, [Outcome(0, 1, 1.0)])
    assert fitted.rewards[2] == 0.5 and fitted.stderr[2] == 0.5 and fitted.win_rates[2] is None
    assert win_rates(3, [Outcome(0, 1, 1.0)]) == [1.0, 0.0, None]


@pytest.mark.parametrize("seed", range(6))
def test_sampled_outcomes_recover_a_hidden_order_and_the_standard_error_matches_the_bootstrap(seed):
    rng = random.Random(seed)
    k = rng.randint(3, 8)
    theta = [rng.gauss(0, 1.5) for _ in range(k)]
    outcomes = []
    for _ in range(40):  # 40 rounds of every pair
        for i in range(k):
            for j in range(i + 1, k):
                p = 1 / (1 + math.exp(theta[j] - theta[i]))
                outcomes.append(Outcome(i, j, 1.0 if rng.random() < p else 0.0))
    analytic = group_rewards(k, outcomes)
    truth = sorted(range(k), key=lambda r: -theta[r])
    assert kendall_tau(list(analytic.ranking), truth) >= 0.6
    fitted = [s - sum(analytic.strengths) / k for s in analytic.strengths]
    centred = [t - sum(theta) / k for t in theta]
    assert max(abs(a - b) for a, b in zip(fitted, centred)) < 0.6
    boot = group_rewards(k, outcomes, seed=seed, samples=60)
    for a, b in zip(analytic.stderr, boot.stderr):
        assert 0.5 < a / b < 2.0, (analytic.stderr, boot.stderr)
