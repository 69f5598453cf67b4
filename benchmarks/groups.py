"""Group strategies: what each costs and how well it orders a group.

Usage:
    python benchmarks/groups.py mock [--sizes 4,8,16] [--groups 12] [--flip 0.1] [--json out.json]
    python benchmarks/groups.py vllm [--groups 8] [--json out.json]

``mock`` — the project's mock server as the judge, its answers following a hidden order
of each group: every ordered pair's verdict prefers the better response, except a
``--flip`` fraction of them (drawn per ordered pair, so the two orders of a pair can
disagree); the listwise and individual answers score the hidden order (1–10 spread over
the group), each score moved by one with probability ``--flip``. Per strategy and
position: judge requests and generated tokens per group, and Kendall τ between the
ranking and the hidden order (mean over groups; a response without a reward ranks last).

Target (issue 25): ``circular`` with both orders at k = 8 uses ≤ 0.3× the judge requests
of ``all_pairs`` with both orders, with τ within 0.1 of it at 10 % flips.

``vllm`` — vLLM's CPU build with the embedded model, RM-Bench chat prompts
(``../shared/data/rmbench/chat_filtered.json``: six responses per prompt) as groups:
seconds and tokens per response for listwise critique and verdict against individual
critique and verdict, output constrained to each method's schema (the 135M model writes
no valid JSON without it), 3 shots, at concurrency 8, one run. Target: listwise critique ≤ 0.5× the
seconds per response of individual critique.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RMBENCH_CHAT = ROOT.parent / "shared" / "data" / "rmbench" / "chat_filtered.json"
# (strategy, rm type, position) rows of the mock benchmark
MOCK_ROWS = [("listwise", "listwise", "as_given"), ("individual", "individual", "as_given"),
             ("all_pairs", "pairwise", "as_given"), ("all_pairs", "pairwise", "both"),
             ("circular", "pairwise", "as_given"), ("circular", "pairwise", "both"),
             ("knockout", "pairwise", "as_given"), ("knockout", "pairwise", "both")]
PAIRWISE_FIELDS = {"analysis of A": "a", "analysis of B": "b", "reason of A=B": "", "reason of A>B": "",
                   "reason of B>A": ""}
GRADES = 2  # a pair whose hidden ranks differ by more than k / GRADES gets ++, else +
INDIVIDUAL_FIELDS = {"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w"}


def text(group: int, response: int) -> str:
    return f"group {group} response {response}."


def hidden_groups(k: int, groups: int, flip: float, seed: int) -> tuple[list[dict[str, Any]], list[list[int]]]:
    """Mock rules answering by a hidden order per group (with flips), and each group's
    true ranking (best first)."""
    rng = random.Random(seed)
    rules: list[dict[str, Any]] = []
    truths = []
    for g in range(groups):
        quality = rng.sample(range(k), k)  # a permutation: quality[i] higher is better
        truths.append(sorted(range(k), key=lambda r: -quality[r]))
        for a, b in itertools.permutations(range(k), 2):
            better = quality[a] > quality[b]
            if rng.random() < flip:
                better = not better
            strong = abs(quality[a] - quality[b]) * GRADES > k  # a clear gap: ++, as judges grade it
            choice = ("A" if better else "B") + ("++" if strong else "+")
            rules.append({"contains": [f"<|begin_of_response_A|>\n{text(g, a)}", f"<|begin_of_response_B|>\n{text(g, b)}"],
                          "response": json.dumps({**PAIRWISE_FIELDS, "choice": choice})})

        def score(i: int) -> int:
            value = 1 + round(9 * quality[i] / (k - 1))
            if rng.random() < flip:
                value += rng.choice((-1, 1))
            return min(10, max(1, value))
        scores = {str(i + 1): score(i) for i in range(k)}
        rules.append({"contains": [f"<|begin_of_response_1|>\n{text(g, 0)}"],
                      "response": json.dumps({"analysis": {label: "x" for label in scores}, "scores": scores})})
        for i in range(k):
            rules.append({"contains": [f"<|begin_of_response|>\n{text(g, i)}"],
                          "response": json.dumps({**INDIVIDUAL_FIELDS, "score": score(i)})})
    return rules, truths


def mock_bench(sizes: list[int], groups: int, flip: float, seed: int) -> list[dict[str, Any]]:
    from icrm import ICRM, MockServer
    from icrm.groups.outcomes import kendall_tau

    rows = []
    for k in sizes:
        rules, truths = hidden_groups(k, groups, flip, seed)
        conversations = [[[{"role": "user", "content": f"Question {g}?"},
                           {"role": "assistant", "content": text(g, i)}] for i in range(k)] for g in range(groups)]
        with MockServer({"strict": True, "matches": rules}) as url:
            for strategy, rm_type, position in MOCK_ROWS:
                with ICRM(engine="openai", model_name="mock", base_url=url, rm_type=rm_type, group_strategy=strategy,
                          position=position, num_shots=0, max_retries=0, use_cache=False) as icrm:
                    results = [icrm.judge_group(c, key=f"g{g}") for g, c in enumerate(conversations)]
                taus = []
                for result, truth in zip(results, truths):
                    unrated = [r for r in range(k) if r not in result.ranking]
                    taus.append(kendall_tau(list(result.ranking) + unrated, truth))
                rows.append({"k": k, "strategy": strategy, "position": position,
                             "requests": statistics.fmean(r.requests for r in results),
                             "generated": statistics.fmean(r.usage.completion_tokens if r.usage else 0 for r in results),
                             "prompt": statistics.fmean(r.usage.prompt_tokens if r.usage else 0 for r in results),
                             "tau": statistics.fmean(taus),
                             "unrewarded": sum(x is None for r in results for x in r.rewards)})
                print(f"  k={k} {strategy} {position} done", file=sys.stderr)
    return rows


def rmbench_groups(n: int) -> list[list[list[dict[str, str]]]]:
    rows = json.loads(RMBENCH_CHAT.read_text())[:n]
    return [[[{"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
             for answer in (*row["chosen"], *row["rejected"])] for row in rows]


def vllm_bench(n: int, concurrency: int) -> list[dict[str, Any]]:
    from icrm import ICRM
    from icrm.engines.local import embedded_model_hf_dir

    groups = rmbench_groups(n)
    responses = sum(len(g) for g in groups)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TMPDIR"] = tmp
        with ICRM(engine="vllm", model_name=str(embedded_model_hf_dir()), rm_type="individual", num_shots=3) as owner:
            url = str(owner.engine.clients[0].base_url).rstrip("/")
            owner.judge_many([{"conversation": groups[0][0]}])  # warm the server: not timed
            for rm_type, method in [("listwise", "critique"), ("listwise", "verdict"),
                                    ("individual", "critique"), ("individual", "verdict")]:
                with ICRM(engine="vllm", model_name=owner.config.model_name, worker_addrs=[url], rm_type=rm_type,
                          method=method, num_shots=3, use_cache=False, constrain_output=True) as icrm:
                    start = time.perf_counter()
                    if rm_type == "listwise":
                        results = icrm.run_sync(_all_groups(icrm, groups, concurrency))
                        usage = [r.usage for r in results if r.usage]
                        rewarded = sum(x is not None for r in results for x in r.rewards)
                    else:
                        items = [{"conversation": c} for g in groups for c in g]
                        feedbacks = icrm.judge_many(items, concurrency=concurrency)
                        usage = [f.usage for f in feedbacks if f.usage]
                        rewarded = sum(f.ok for f in feedbacks)
                    seconds = time.perf_counter() - start
                rows.append({"rm_type": rm_type, "method": method, "s_per_response": seconds / responses,
                             "prompt_per_response": sum(u.prompt_tokens for u in usage) / responses,
                             "generated_per_response": sum(u.completion_tokens for u in usage) / responses,
                             "rewarded": rewarded, "responses": responses})
                print(f"  {rm_type} {method} done", file=sys.stderr)
    return rows


async def _all_groups(icrm: Any, groups: list[Any], concurrency: int) -> list[Any]:
    import asyncio

    gate = asyncio.Semaphore(concurrency)

    async def one(g: int, conversations: Any) -> Any:
        async with gate:
            return await icrm.ajudge_group(conversations, key=f"rmbench:{g}")
    return list(await asyncio.gather(*(one(g, c) for g, c in enumerate(groups))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("judge", choices=("mock", "vllm"))
    parser.add_argument("--sizes", default="4,8,16")
    parser.add_argument("--groups", type=int, default=None, help="groups per size (mock: 12) / RM-Bench prompts (vllm: 8)")
    parser.add_argument("--flip", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if args.judge == "mock":
        rows = mock_bench([int(s) for s in args.sizes.split(",")], args.groups or 12, args.flip, args.seed)
        print(f"mock judge, {args.groups or 12} groups per size, {args.flip:.0%} flips, seed {args.seed}")
        print(f"{'k':>3} {'strategy':<12}{'position':<10}{'requests':>9}{'x all_pairs':>12}{'generated':>10}"
              f"{'prompt':>9}{'tau':>7}{'unrewarded':>11}")
        for r in rows:
            base = next(b for b in rows if (b["k"], b["strategy"], b["position"]) == (r["k"], "all_pairs", r["position"]))
            print(f"{r['k']:>3} {r['strategy']:<12}{r['position']:<10}{r['requests']:>9.1f}"
                  f"{r['requests'] / base['requests']:>12.2f}{r['generated']:>10.1f}{r['prompt']:>9.0f}{r['tau']:>7.3f}"
                  f"{r['unrewarded']:>11}")
    else:
        from icrm.engines.machine import NATIVE_BF16_FLAGS, cpu_flags

        rows = vllm_bench(args.groups or 8, args.concurrency)
        flags = cpu_flags()
        native = [f for f in NATIVE_BF16_FLAGS if f in flags]
        print(f"vLLM CPU, embedded model, {args.groups or 8} RM-Bench chat prompts x 6 responses, 3 shots, concurrency "
              f"{args.concurrency}; CPU: {os.cpu_count()} cores, native bf16 {', '.join(native) or 'none'}")
        critique = next(r for r in rows if r["rm_type"] == "individual" and r["method"] == "critique")
        print(f"{'rm type':<12}{'method':<10}{'s/response':>11}{'x individual critique':>22}{'prompt/resp':>12}"
              f"{'generated/resp':>15}{'rewarded':>10}")
        for r in rows:
            print(f"{r['rm_type']:<12}{r['method']:<10}{r['s_per_response']:>11.3f}"
                  f"{r['s_per_response'] / critique['s_per_response']:>22.2f}{r['prompt_per_response']:>12.0f}"
                  f"{r['generated_per_response']:>15.1f}{r['rewarded']:>6}/{r['responses']}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
