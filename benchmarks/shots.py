"""Managed shots: what a pool built from labelled data does to a judge, per selection
mode and number of shots — and what ``similar`` selection costs on a large pool.

Usage:
    python benchmarks/shots.py [--engine E --model_name M --base_url URL] [--eval_rows 40]
        [--num_shots 0,1,3,8] [--modes fixed,random,similar,balanced,similar_balanced]
        [--method verdict] [--max_shot_tokens N] [--data PATH] [--json out.json]
    python benchmarks/shots.py --selection_only [--pool_size 100000] [--queries 200]

Effect: LLMBar (``../shared/data/pairwise/llmbar.jsonl``) split by prompt (a seeded hash:
half the prompts make the pool, the other half are judged, so no judged prompt is in the
pool); the pool built with `icrm.shots_build.build_shots` (verdict-only shots, the
preferred side balanced); the first ``--eval_rows`` judged rows (chosen placed in A or B
by the seed, as ``icrm eval``) judged pairwise for each number of shots × each mode (0
shots once). Rows: accuracy with a 95 % Wilson interval (an answer without a verdict
counts wrong; their number is shown), prompt tokens per judgement, and the prefix-cache
hit rate an ideal cache would get — the share of each prompt's characters shared with
the longest common prefix of an earlier prompt of the same run. With no ``--engine``,
the embedded model on a llama.cpp server (it judges near chance: the table shows costs,
not the quality a capable judge gets; point ``--engine``/``--base_url`` at one for that).

Selection cost: a pool of ``--pool_size`` shots made from LLMBar's rows (each with
random LLMBar words appended, so no two are alike), the BM25 index built once, then
``--queries`` held-out items selected one at a time; mean and median milliseconds per
item for each mode.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
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
LLMBAR = ROOT.parent / "shared" / "data" / "pairwise" / "llmbar.jsonl"
MODES = ("fixed", "random", "similar", "balanced", "similar_balanced")


def split_by_prompt(rows: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pool rows, judged rows): each prompt's rows go to one side, by a seeded hash."""
    def side(row: dict[str, Any]) -> int:
        return hashlib.sha256(f"{seed}:{row['prompt']}".encode()).digest()[0] % 2
    return [r for r in rows if side(r) == 0], [r for r in rows if side(r) == 1]


def wilson(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion (Wilson, 1927)."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def ideal_prefix_hit_rate(prompts: list[str]) -> float:
    """Characters an unbounded prefix cache would reuse, as a share of all prompt
    characters: for each prompt in order, its longest common prefix with any earlier one
    (the neighbours in sorted order hold it)."""
    import bisect

    seen: list[str] = []
    shared = total = 0
    for prompt in prompts:
        i = bisect.bisect_left(seen, prompt)
        best = max((len(os.path.commonprefix([prompt, seen[j]])) for j in (i - 1, i) if 0 <= j < len(seen)), default=0)
        shared, total = shared + best, total + len(prompt)
        seen.insert(i, prompt)
    return shared / total if total else 0.0


def logged_prompts(path: Path) -> list[str]:
    prompts = []
    for line in path.read_text().splitlines():
        request = json.loads(line).get("request", {})
        prompts.append(request.get("prompt") or (request.get("messages") or [{}])[-1].get("content", ""))
    return prompts


def judged_items(rows: list[dict[str, Any]], seed: int) -> list[tuple[str, dict[str, Any], str]]:
    from icrm.evaluation.rewardbench import chosen_in_a
    from icrm.inputs import rewardbench_pair

    items = []
    for row in rows:
        chosen, rejected = rewardbench_pair(row, str(row["id"]))
        first = chosen_in_a(str(row["id"]), seed)
        items.append((str(row["id"]), {"conversation_A": chosen if first else rejected,
                                       "conversation_B": rejected if first else chosen}, "A" if first else "B"))
    return items


async def judge_all(icrm: Any, items: list[tuple[str, dict[str, Any], str]], concurrency: int) -> list[Any]:
    gate = asyncio.Semaphore(concurrency)

    async def one(rid: str, item: dict[str, Any]) -> Any:
        async with gate:
            return await icrm.ajudge_item(item, key=rid)
    return await asyncio.gather(*(one(rid, item) for rid, item, _ in items))


def effect(args: argparse.Namespace) -> list[dict[str, Any]]:
    from icrm import ICRM
    from icrm.shots_build import build_shots, write_pool

    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    pool_rows, judged_rows = split_by_prompt(rows, args.seed)
    shots, report = build_shots(pool_rows, "pairwise", seed=args.seed, source=str(args.data))
    items = judged_items(judged_rows[: args.eval_rows], args.seed)
    print(f"pool: {report.shots} shots ({', '.join(f'{k} {v}' for k, v in sorted(report.classes.items()))}) from "
          f"{len(pool_rows)} rows; judged: {len(items)} of {len(judged_rows)} rows", file=sys.stderr)
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        pool = write_pool(shots, Path(tmp) / "pool.jsonl")
        common = {"engine": args.engine, "model_name": args.model_name, "base_url": args.base_url,
                  "rm_type": "pairwise", "method": args.method, "shots_pool_path": pool, "use_cache": False,
                  "max_shot_tokens": args.max_shot_tokens}
        with ICRM(**common, num_shots=0) as owner:
            if owner.engine.workers:  # a server icrm started: every configuration below uses it
                common["worker_addrs"] = [str(c.base_url).rstrip("/") for c in owner.engine.clients]
            configs = [(0, "-")] + [(n, m) for n in args.num_shots if n for m in args.modes]
            for n, mode in configs:
                log = Path(tmp) / f"{n}-{mode}.jsonl"
                with ICRM(**common, num_shots=n, shot_sampling_mode="fixed" if n == 0 else mode, log_file=log) as icrm:
                    start = time.perf_counter()
                    feedbacks = asyncio.run(judge_all(icrm, items, args.concurrency))
                    seconds = time.perf_counter() - start
                correct = sum(f.ok and f.choice[0] == side for f, (_, _, side) in zip(feedbacks, items))
                low, high = wilson(correct, len(items))
                usage = [f.usage for f in feedbacks if f.usage]
                table.append({"num_shots": n, "mode": mode, "accuracy": correct / len(items), "ci95": [low, high],
                              "no_verdict": sum(not f.ok for f in feedbacks), "items": len(items),
                              "prompt_tokens": sum(u.prompt_tokens for u in usage) / max(len(usage), 1),
                              "prefix_hit_rate": ideal_prefix_hit_rate(logged_prompts(log)),
                              "s_per_item": seconds / len(items)})
                print(f"  {n} shots, {mode}: done", file=sys.stderr)
    return table


def selection_cost(args: argparse.Namespace) -> list[dict[str, Any]]:
    from icrm.conversation import Conversation
    from icrm.shot_selection import select_shots
    from icrm.shot_selection.base import pool_index
    from icrm.shot_selection.similar import similarity
    from icrm.shots import Shot, ShotsPool

    rng = random.Random(args.seed)
    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines() if line.strip()]
    pool_rows, judged_rows = split_by_prompt(rows, args.seed)
    words = " ".join(r["prompt"] for r in rows).split()
    start = time.perf_counter()
    shots = []
    for i in range(args.pool_size):
        row = pool_rows[i % len(pool_rows)]
        prompt = row["prompt"] + " " + " ".join(rng.choices(words, k=12))
        pair = (Conversation.from_messages([{"role": "user", "content": prompt},
                                            {"role": "assistant", "content": answer}]) for answer in (row["chosen"], row["rejected"]))
        shots.append(Shot(f"s{i}", tuple(pair), {"choice": rng.choice(["A+", "B+"])}, {"id": f"s{i}"}, True))
    pool = ShotsPool(shots, "pairwise", f"{args.pool_size}-shot pool")
    made = time.perf_counter() - start
    start = time.perf_counter()
    index = pool_index(pool)
    keys = time.perf_counter() - start
    queries = [[Conversation.from_messages([{"role": "user", "content": r["prompt"]},
                                            {"role": "assistant", "content": a}]) for a in (r["chosen"], r["rejected"])]
               for r in judged_rows[: args.queries]]
    start = time.perf_counter()
    from icrm.shot_selection.base import ShotQuery
    similarity(index, ShotQuery.of(queries[0], rng))  # builds the BM25 index
    built = time.perf_counter() - start
    print(f"pool of {args.pool_size}: made in {made:.1f} s, leakage keys {keys:.1f} s, BM25 index {built:.1f} s",
          file=sys.stderr)
    table = []
    for mode in args.modes:
        times = []
        for q in queries:
            start = time.perf_counter()
            select_shots(pool, 8, mode, q, random.Random(0))
            times.append((time.perf_counter() - start) * 1000)
        table.append({"mode": mode, "pool": args.pool_size, "queries": len(queries), "num_shots": 8,
                      "mean_ms": statistics.fmean(times), "median_ms": statistics.median(times)})
    # What pruning long queries to their rarest words costs: exact BM25 on the same items,
    # and how many of the pruned choice's source rows the exact one shares (Jaccard).
    from icrm.shot_selection import similar as module

    pruned_cap, times, overlap = module.MAX_QUERY_WORDS, [], []
    for q in queries:
        source = [{int(s.id[1:]) % len(pool_rows) for s in select_shots(pool, 8, "similar", q, random.Random(0))}]
        module.MAX_QUERY_WORDS = 10**9
        start = time.perf_counter()
        exact = select_shots(pool, 8, "similar", q, random.Random(0))
        times.append((time.perf_counter() - start) * 1000)
        module.MAX_QUERY_WORDS = pruned_cap
        source.append({int(s.id[1:]) % len(pool_rows) for s in exact})
        overlap.append(len(source[0] & source[1]) / len(source[0] | source[1]))
    table.append({"mode": "similar, exact BM25", "pool": args.pool_size, "queries": len(queries), "num_shots": 8,
                  "mean_ms": statistics.fmean(times), "median_ms": statistics.median(times),
                  "jaccard_with_pruned": statistics.fmean(overlap)})
    return table


def hardware() -> str:
    from icrm.engines.machine import NATIVE_BF16_FLAGS, cpu_flags

    native = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    return f"CPU: {os.cpu_count()} cores, native bf16 {', '.join(native) or 'none'}, no GPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine")
    parser.add_argument("--model_name")
    parser.add_argument("--base_url")
    parser.add_argument("--method", default="verdict", choices=("verdict", "logprob"))
    parser.add_argument("--data", default=str(LLMBAR))
    parser.add_argument("--eval_rows", type=int, default=40)
    parser.add_argument("--num_shots", default="0,1,3,8", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--modes", default=",".join(MODES), type=lambda s: s.split(","))
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max_shot_tokens", type=int, help="a token budget for the shots (default: none)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--selection_only", action="store_true")
    parser.add_argument("--pool_size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if args.selection_only:
        table = selection_cost(args)
        print(f"shot selection, 8 shots per item, one item at a time; {hardware()}")
        print(f"{'mode':<18}{'pool':>9}{'mean ms':>9}{'median ms':>11}")
        for r in table:
            print(f"{r['mode']:<18}{r['pool']:>9}{r['mean_ms']:>9.2f}{r['median_ms']:>11.2f}"
                  + (f"   source rows shared with similar: {r['jaccard_with_pruned']:.2f} (Jaccard)"
                     if "jaccard_with_pruned" in r else ""))
    else:
        table = effect(args)
        print(f"engine {args.engine or 'llamacpp (embedded model)'}, method {args.method}, max_shot_tokens "
              f"{args.max_shot_tokens}, {args.data} split by prompt; {hardware()}")
        print(f"{'shots':>5}  {'mode':<18}{'accuracy':>9}  {'95% CI':<13}{'no verdict':>11}{'prompt tok':>11}"
              f"{'prefix hit':>11}{'s/item':>8}")
        for r in table:
            low, high = r["ci95"]
            print(f"{r['num_shots']:>5}  {r['mode']:<18}{r['accuracy']:>9.3f}  [{low:.2f}, {high:.2f}]  "
                  f"{r['no_verdict']:>9}{r['prompt_tokens']:>11.0f}{r['prefix_hit_rate']:>11.2f}{r['s_per_item']:>8.2f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
