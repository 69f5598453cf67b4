"""Rubrics: one request per criterion against all criteria in one request — seconds and
tokens per item on vLLM's CPU build with the embedded model, for 3, 6 and 12 criteria.

Usage:
    python benchmarks/rubrics.py [--items 6] [--sizes 3,6,12] [--method critique] [--json out.json]

Items: the first N HHH prompts with their chosen answers (``../shared/data/pairwise/
hhh.jsonl``), individual mode, no shots, output constrained to the rubric's schema (the
135M model writes no valid rubric JSON without it), concurrency 8, temperature 0, the
generation cache off, one run. Criteria: the first k of twelve generic ones (choices
and 1–5 scales alternating), weighted mean. ``all in one`` is ``max_criteria`` unset;
``per criterion`` is ``max_criteria=1`` (k requests an item, sent at once). The rows
report seconds per item, prompt and generated tokens per item, and how many items got
a verdict on every criterion.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HHH = ROOT.parent / "shared" / "data" / "pairwise" / "hhh.jsonl"
CRITERIA = [
    ("correct", "The facts, results and code in the response are right."),
    ("complete", "It answers every part of the query."),
    ("clear", "It is easy to follow."),
    ("concise", "No padding or repetition."),
    ("safe", "Nothing harmful or dangerous."),
    ("relevant", "Everything in it is about the query."),
    ("grounded", "Claims are supported, not invented."),
    ("polite", "The tone is respectful."),
    ("formatted", "Lists, code and headings are used where they help."),
    ("specific", "Concrete details rather than generalities."),
    ("honest", "It says what it does not know."),
    ("actionable", "The user can act on it."),
]


def rubric(k: int) -> dict[str, Any]:
    criteria = [{"name": n, "description": d, **({"choices": ["no", "partly", "yes"]} if i % 2 == 0 else
                                                   {"scale": [1, 5]})} for i, (n, d) in enumerate(CRITERIA[:k])]
    return {"criteria": criteria}


def items(n: int) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in HHH.read_text().splitlines()][:n]
    return [{"conversation": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["chosen"]}]}
            for r in rows]


def bench(n: int, sizes: list[int], method: str, concurrency: int) -> list[dict[str, Any]]:
    from icrm import ICRM
    from icrm.engines.local import embedded_model_hf_dir

    batch = items(n)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TMPDIR"] = tmp
        with ICRM(engine="vllm", model_name=str(embedded_model_hf_dir()), num_shots=0) as owner:
            url = str(owner.engine.clients[0].base_url).rstrip("/")
            owner.judge_many(batch[:1])  # warm the server: not timed
            for k in sizes:
                for mode, max_criteria in (("all in one", None), ("per criterion", 1)):
                    with ICRM(engine="vllm", model_name=owner.config.model_name, worker_addrs=[url], num_shots=0,
                              rubric=rubric(k), max_criteria=max_criteria, method=method, use_cache=False,
                              constrain_output=True) as icrm:
                        start = time.perf_counter()
                        feedbacks = icrm.judge_many(batch, concurrency=concurrency)
                        seconds = time.perf_counter() - start
                    usage = [f.usage for f in feedbacks if f.usage]
                    rows.append({"criteria": k, "mode": mode, "s_per_item": seconds / n,
                                 "prompt_per_item": sum(u.prompt_tokens for u in usage) / n,
                                 "generated_per_item": sum(u.completion_tokens for u in usage) / n,
                                 "verdicts": sum(f.ok for f in feedbacks), "items": n})
                    print(f"  {k} criteria, {mode}: done", file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--sizes", default="3,6,12")
    parser.add_argument("--method", default="critique", choices=("critique", "verdict"))
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    from icrm.engines.machine import NATIVE_BF16_FLAGS, cpu_flags

    rows = bench(args.items, [int(s) for s in args.sizes.split(",")], args.method, args.concurrency)
    native = [f for f in NATIVE_BF16_FLAGS if f in cpu_flags()]
    print(f"vLLM CPU, embedded model, {args.items} HHH items, method {args.method}, constrained output, no shots, "
          f"concurrency {args.concurrency}; CPU: {os.cpu_count()} cores, native bf16 {', '.join(native) or 'none'}")
    print(f"{'criteria':>8}  {'mode':<14}{'s/item':>8}{'x all in one':>13}{'prompt/item':>12}{'generated/item':>15}"
          f"{'verdicts':>9}")
    for r in rows:
        base = next(b for b in rows if b["criteria"] == r["criteria"] and b["mode"] == "all in one")
        print(f"{r['criteria']:>8}  {r['mode']:<14}{r['s_per_item']:>8.2f}{r['s_per_item'] / base['s_per_item']:>13.2f}"
              f"{r['prompt_per_item']:>12.0f}{r['generated_per_item']:>15.1f}{r['verdicts']:>5}/{r['items']}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
