"""From a group's pairwise outcomes to one reward per response: win rates, and
Bradley–Terry strengths with bootstrap intervals.

An `Outcome` says how strongly response ``i`` beat response ``j`` (``p_i`` in [0, 1]: 1 a
clear win, 0.5 a tie, or the judge's probability where its method gives one). The
Bradley–Terry model (Bradley & Terry, 1952) gives each response a strength θ with
P(i beats j) = σ(θ_i − θ_j); icrm fits it with `choix` (Maystre & Grossglauser's
iterative Luce spectral ranking, ``ilsr_pairwise_dense``, on the matrix of fractional
wins, a small ``alpha`` keeping a response that wins every comparison finite).

A response's reward is its expected win probability against the rest of its group,
mean over j ≠ i of σ(θ_i − θ_j), in [0, 1]: 0.5 for a group of equals, near 1 for the
clear best. Its standard error comes from the fit's Fisher information (the inverse of
the log-likelihood's Hessian at the fit, carried to the reward by the delta method) —
microseconds for a group of 16 — or, on request, from bootstrap refits of the outcomes
resampled with replacement.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Outcome", "GroupRewards", "win_rates", "bradley_terry", "group_rewards", "kendall_tau",
           "BOOTSTRAP_SAMPLES", "ALPHA"]

BOOTSTRAP_SAMPLES = 0  # 0: the analytic standard error (fast enough for every RL step)
# choix's regularisation: a small prior count on every pair, so a response that wins every
# comparison gets a large but finite strength.
ALPHA = 0.01


@dataclass(frozen=True)
class Outcome:
    """One judged comparison of responses ``i`` and ``j`` of a group.

    Attributes:
        i, j: the responses' indexes in the group.
        p_i: how much ``i`` won: 1.0 a win, 0.0 a loss, 0.5 a tie, or the judge's
            probability that ``i`` is better.
    """

    i: int
    j: int
    p_i: float


@dataclass(frozen=True)
class GroupRewards:
    """The rewards of one group.

    Attributes:
        rewards: one per response, in [0, 1] (expected win probability against the rest).
        stderr: one per response, the bootstrap standard deviation of its reward.
        strengths: the Bradley–Terry strengths θ (log scale, mean 0).
        win_rates: each response's share of the comparisons it won (ties count half).
        ranking: the responses' indexes, best first.
    """

    rewards: tuple[float, ...]
    stderr: tuple[float, ...]
    strengths: tuple[float, ...]
    win_rates: tuple[float | None, ...]
    ranking: tuple[int, ...]


def win_rates(k: int, outcomes: Sequence[Outcome]) -> list[float | None]:
    """Each response's share of the comparisons it took part in that it won (a tie or a
    probability counts as its share); None for a response never compared.

    >>> win_rates(3, [Outcome(0, 1, 1.0), Outcome(1, 2, 0.5), Outcome(0, 2, 1.0)])
    [1.0, 0.25, 0.25]
    """
    won, played = [0.0] * k, [0] * k
    for o in outcomes:
        won[o.i] += o.p_i
        won[o.j] += 1.0 - o.p_i
        played[o.i] += 1
        played[o.j] += 1
    return [won[r] / played[r] if played[r] else None for r in range(k)]


def bradley_terry(k: int, outcomes: Sequence[Outcome], alpha: float = ALPHA) -> list[float]:
    """Bradley–Terry strengths (mean 0) of `k` responses from their outcomes (`choix`).

    >>> strengths = bradley_terry(3, [Outcome(0, 1, 1.0), Outcome(1, 2, 1.0), Outcome(0, 2, 1.0)])
    >>> strengths[0] > strengths[1] > strengths[2]
    True
    """
    import choix
    import numpy as np

    wins = np.zeros((k, k))
    for o in outcomes:
        wins[o.i, o.j] += o.p_i
        wins[o.j, o.i] += 1.0 - o.p_i
    strengths = choix.ilsr_pairwise_dense(wins, alpha=alpha)
    strengths = strengths - strengths.mean()
    return [float(s) for s in strengths]


def _expected_wins(strengths: Sequence[float]) -> list[float]:
    k = len(strengths)
    if k < 2:
        return [0.5] * k
    return [sum(1.0 / (1.0 + math.exp(strengths[j] - strengths[i])) for j in range(k) if j != i) / (k - 1)
            for i in range(k)]


def group_rewards(k: int, outcomes: Sequence[Outcome], seed: int = 0,
                  samples: int = BOOTSTRAP_SAMPLES) -> GroupRewards:
    """One reward per response of a group of `k` from its outcomes (see the module
    docstring), with standard errors: analytic (`samples` = 0), or the standard
    deviation over `samples` bootstrap refits seeded by `seed`.

    A response no outcome touches gets the group's middle (0.5) with the largest
    uncertainty (0.5): nothing was learnt of it.
    """
    strengths = bradley_terry(k, outcomes)
    rewards = _expected_wins(strengths)
    if samples:
        rng = random.Random(seed)
        draws = [_expected_wins(bradley_terry(k, rng.choices(list(outcomes), k=len(outcomes))))
                 for _ in range(samples)]
        stderr = [_stdev([d[r] for d in draws]) for r in range(k)]
    else:
        stderr = _analytic_stderr(k, outcomes, strengths)
    rates = win_rates(k, outcomes)
    for r in range(k):
        if rates[r] is None:
            rewards[r], stderr[r] = 0.5, 0.5
    ranking = sorted(range(k), key=lambda r: (-rewards[r], r))
    return GroupRewards(tuple(rewards), tuple(stderr), tuple(strengths), tuple(rates), tuple(ranking))


def _analytic_stderr(k: int, outcomes: Sequence[Outcome], strengths: Sequence[float]) -> list[float]:
    """Standard errors of the rewards: Σ = pinv(Hessian of the BT log-likelihood, with
    the fit's regularisation), then the delta method through the rewards' gradients."""
    import numpy as np

    theta = np.asarray(strengths)
    hessian = np.eye(k) * ALPHA
    for o in outcomes:
        p = 1.0 / (1.0 + math.exp(theta[o.j] - theta[o.i]))
        w = p * (1.0 - p)
        hessian[o.i, o.i] += w
        hessian[o.j, o.j] += w
        hessian[o.i, o.j] -= w
        hessian[o.j, o.i] -= w
    covariance = np.linalg.pinv(hessian)
    out = []
    for i in range(k):
        gradient = np.zeros(k)
        for j in range(k):
            if j != i:
                p = 1.0 / (1.0 + math.exp(theta[j] - theta[i]))
                gradient[i] += p * (1.0 - p) / (k - 1)
                gradient[j] -= p * (1.0 - p) / (k - 1)
        out.append(float(math.sqrt(max(gradient @ covariance @ gradient, 0.0))))
    return out


def _stdev(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def kendall_tau(order: Sequence[int], truth: Sequence[int]) -> float:
    """Kendall's τ between two rankings of the same items (best first): 1 the same
    order, −1 reversed.

    >>> kendall_tau([0, 1, 2], [0, 1, 2]), kendall_tau([2, 1, 0], [0, 1, 2])
    (1.0, -1.0)
    """
    place = {item: rank for rank, item in enumerate(truth)}
    ranks = [place[item] for item in order]
    n = len(ranks)
    concordant = sum(1 if ranks[a] < ranks[b] else -1 for a in range(n) for b in range(a + 1, n))
    return concordant / (n * (n - 1) / 2) if n > 1 else 1.0
