"""Judging methods near the cost limit: judgements/s and generated tokens per judgement
of critique, verdict and logprob, against a prefill-only request (max_tokens=1) of the
same prompts — the physical limit of a judgement — on the same server, one run.

Usage:
    python benchmarks/methods.py [--servers llamacpp,vllm] [--pairs 32] [--json out.json]

The same LLMBar pairs (../shared/data/pairwise/llmbar.jsonl, first N), pairwise, the
default 3 fixed shots, position as given, temperature 0, output constrained where the
server can (critique and verdict; logprob reads its distribution unconstrained). One
server per engine serves every method: a llama.cpp worker started with logits kept for
logprobs (so its prefill costs the same for all), and vLLM's CPU build (automatic
prefix caching on) at concurrency 8; llama.cpp serves one request at a time. Before each
timed run vLLM's prefix cache is emptied and one item warms it, so every run (method or
prefill-only) starts with the shots' prefix cached and nothing else.

Targets: logprob >= 0.8x the prefill-only rate of its own prompts; verdict >= 0.5x of
its own prompts; critique reported.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LLMBAR = ROOT.parent / "shared" / "data" / "pairwise" / "llmbar.jsonl"
METHODS = ("critique", "verdict", "logprob")
CONCURRENCY = {"llamacpp": 1, "vllm": 8}


def pairs(n: int) -> list[dict[str, Any]]:
    from icrm.inputs import rewardbench_pair

    items = []
    for line in LLMBAR.read_text().splitlines()[:n]:
        chosen, rejected = rewardbench_pair(json.loads(line), "llmbar")
        items.append({"conversation_A": chosen, "conversation_B": rejected})
    return items


def reset_prefix_cache(icrm: Any) -> None:
    """Empty vLLM's prefix cache (its dev endpoint), so a timed run finds only what its own
    warm-up put there: else the prefill-only run, timed after a method's, would find
    every prompt already computed. llama.cpp keeps only its last prompt: nothing to do."""
    import httpx

    if icrm.engine.name != "vllm":
        return
    for client in icrm.engine.clients:
        root = str(client.base_url).rstrip("/").removesuffix("/v1")
        httpx.post(f"{root}/reset_prefix_cache", timeout=60).raise_for_status()


def judge_timed(icrm: Any, items: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    reset_prefix_cache(icrm)
    icrm.judge_many(items[:1], concurrency=1)  # warm: the shared prefix is in the server's cache
    start = time.perf_counter()
    feedbacks = icrm.judge_many(items, concurrency=concurrency)
    seconds = time.perf_counter() - start
    generated = [f.usage.completion_tokens for f in feedbacks if f.usage is not None]
    return {"judgements_s": len(items) / seconds, "generated_tokens_per_judgement": sum(generated) / max(len(generated), 1),
            "verdicts": sum(f.ok for f in feedbacks), "seconds": seconds}


def prefill_timed(icrm: Any, items: list[dict[str, Any]], concurrency: int) -> dict[str, float]:
    """The same prompts, in the same mode, with max_tokens=1 and nothing else asked."""
    import openai

    prompts = [icrm.render_prompt(**item) for item in items]
    reset_prefix_cache(icrm)
    client = openai.AsyncOpenAI(base_url=str(icrm.engine.clients[0].base_url), api_key="unused", timeout=600)
    model = icrm.engine.model

    async def one(prompt: str) -> None:
        if icrm.engine.completion:
            await client.completions.create(model=model, prompt=prompt, max_tokens=1, temperature=0)
        else:
            await client.chat.completions.create(model=model, messages=[{"role": "user", "content": prompt}],
                                                 max_tokens=1, temperature=0)

    async def run() -> float:
        await one(prompts[0])  # warm, after the reset: the shots' prefix, as for the method
        gate = asyncio.Semaphore(concurrency)

        async def gated(prompt: str) -> None:
            async with gate:
                await one(prompt)
        start = time.perf_counter()
        await asyncio.gather(*(gated(p) for p in prompts))
        seconds = time.perf_counter() - start
        await client.close()
        return seconds

    seconds = asyncio.run(run())
    return {"judgements_s": len(items) / seconds, "seconds": seconds}


def server_args(engine: str, tmp: Path) -> dict[str, Any]:
    if engine == "llamacpp":
        return {}
    from icrm.engines.local import embedded_model_hf_dir

    os.environ["TMPDIR"] = str(tmp)
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # for /reset_prefix_cache between timed runs
    return {"engine": "vllm", "model_name": str(embedded_model_hf_dir()), "worker_args": ["--enable-prompt-tokens-details"]}


def bench_server(engine: str, items: list[dict[str, Any]], tmp: Path) -> dict[str, Any]:
    from icrm import ICRM

    concurrency = CONCURRENCY[engine]
    results: dict[str, Any] = {"concurrency": concurrency, "pairs": len(items)}
    # Constrained where the server can: unconstrained, the 135M model rambles to max_tokens on vLLM.
    common = {**server_args(engine, tmp), "rm_type": "pairwise", "num_shots": 3, "constrain_output": True}
    # The logprob ICRM launches the server (llama.cpp keeps logits for logprobs); the
    # other methods talk to the same server by address.
    with ICRM(method="logprob", **common) as owner:
        addrs = [str(c.base_url).rstrip("/") for c in owner.engine.clients]
        for method in METHODS:
            shared = {k: v for k, v in common.items() if k != "worker_args"}
            with ICRM(method=method, worker_addrs=addrs, **shared) as icrm:
                measured = judge_timed(icrm, items, concurrency)
                prefill = prefill_timed(icrm, items, concurrency)
            measured["prefill_only_judgements_s"] = prefill["judgements_s"]
            measured["ratio_vs_prefill_only"] = measured["judgements_s"] / prefill["judgements_s"]
            results[method] = measured
            print(f"  {engine} {method}: {measured['judgements_s']:.3f}/s, "
                  f"{measured['generated_tokens_per_judgement']:.1f} tokens, prefill-only "
                  f"{prefill['judgements_s']:.3f}/s", file=sys.stderr)
    return results


TARGETS = {"logprob": 0.8, "verdict": 0.5}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="llamacpp,vllm")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    items = pairs(args.pairs)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.servers.split(","):
            if engine == "vllm" and importlib.util.find_spec("vllm") is None:
                print("vllm: not installed (bash scripts/install_vllm_cpu.sh); skipped", file=sys.stderr)
                continue
            results[engine] = bench_server(engine, items, Path(tmp))
    print(f"{'server':<10}{'method':<10}{'judg./s':>9}{'gen tok':>9}{'prefill/s':>11}{'ratio':>7}{'target':>8}"
          f"{'verdicts':>10}")
    for engine, by_method in results.items():
        for method in METHODS:
            r = by_method[method]
            target = TARGETS.get(method)
            mark = "" if target is None else (f">={target}" + (" ok" if r["ratio_vs_prefill_only"] >= target else " MISS"))
            print(f"{engine:<10}{method:<10}{r['judgements_s']:>9.3f}{r['generated_tokens_per_judgement']:>9.1f}"
                  f"{r['prefill_only_judgements_s']:>11.3f}{r['ratio_vs_prefill_only']:>7.2f}{mark:>8}"
                  f"{r['verdicts']:>6}/{by_method['pairs']}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
