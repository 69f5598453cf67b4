"""Rewards for RL training: per-sample latency (p50/p99) and samples/s through each path a
trainer uses — the TRL reward function, verl's compute_score, OpenRLHF's /get_reward —
with critique and logprob, against a bare one-token completion of the same judge prompts
on the same server, in one run.

Usage:
    python benchmarks/rl_reward.py [--samples 64] [--critique_samples 16] [--json out.json]

One llama.cpp worker with the embedded model (started with logits kept, so logprob runs;
it serves one request at a time), individual mode, the default 3 shots, temperature 0,
the generation cache off. Samples: the first N HHH prompts with their chosen answers,
all N sent at once (as a trainer's wave):
- TRL: one `reward_function` call with the N samples (the trainer waits for the batch,
  so every sample's latency is the call's);
- verl: N concurrent `compute_score_async` calls (its reward loop, per sample);
- OpenRLHF: N concurrent one-sample POSTs to ``icrm serve``'s /get_reward;
- bare: N concurrent ``max_tokens=1`` completions of the same rendered prompts, nothing
  else asked — the floor any path pays.

Target: logprob's p50 through each path <= 1.2x the bare completion's at 64 concurrent
samples, every sample rewarded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
HHH = ROOT.parent / "shared" / "data" / "pairwise" / "hhh.jsonl"
TARGET = 1.2


def samples(n: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in HHH.read_text().splitlines()]
    return [(r["prompt"], r["chosen"]) for r in rows[:n]]


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {"p50_s": statistics.median(ordered), "p99_s": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]}


async def timed(coroutines: list[Any]) -> tuple[list[Any], list[float], float]:
    """Run all at once; (results, per-coroutine seconds to finish, wall seconds)."""
    start = time.perf_counter()

    async def one(coroutine: Any) -> tuple[Any, float]:
        result = await coroutine
        return result, time.perf_counter() - start

    done = await asyncio.gather(*(one(c) for c in coroutines))
    return [r for r, _ in done], [s for _, s in done], time.perf_counter() - start


def trl_path(icrm: Any, batch: list[tuple[str, str]]) -> dict[str, Any]:
    from icrm.integrations.trl import reward_function

    reward = reward_function(icrm, concurrency=len(batch))
    start = time.perf_counter()
    rewards = reward(prompts=[p for p, _ in batch], completions=[c for _, c in batch])
    seconds = time.perf_counter() - start
    return {**percentiles([seconds] * len(batch)), "samples_s": len(batch) / seconds,
            "rewarded": sum(r is not None for r in rewards)}


def verl_path(options: dict[str, Any], batch: list[tuple[str, str]]) -> dict[str, Any]:
    from icrm.integrations.verl import compute_score_async, shared_icrm

    shared_icrm(options)  # started before the clock, as in a running trainer

    async def run() -> tuple[list[Any], list[float], float]:
        return await timed([compute_score_async("hhh", c, None, {"prompt": p}, **options) for p, c in batch])

    results, latencies, wall = asyncio.run(run())
    return {**percentiles(latencies), "samples_s": len(batch) / wall, "rewarded": sum(not r["icrm_failed"] for r in results)}


def openrlhf_path(server: str, method: str, batch: list[tuple[str, str]]) -> dict[str, Any]:
    from icrm.engines.worker import free_port

    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "icrm.cli", "serve", "--worker_addrs", server, "--method", method, "--port", str(port),
         "--use_cache", "false", "--max_concurrency", str(len(batch)), "--max_queue", str(4 * len(batch))],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)

        async def run() -> tuple[list[Any], list[float], float]:
            async with httpx.AsyncClient(timeout=3600) as client:
                async def post(prompt: str, completion: str) -> dict[str, Any]:
                    body = {"query": [prompt + completion], "prompts": [prompt], "labels": [None]}
                    return (await client.post(f"{url}/get_reward", json=body)).json()
                return await timed([post(p, c) for p, c in batch])

        results, latencies, wall = asyncio.run(run())
    finally:
        service.terminate()
        service.wait(30)
    rewarded = sum(1 for r in results if r.get("extra_logs", {}).get("icrm_failed") == [0.0])
    return {**percentiles(latencies), "samples_s": len(batch) / wall, "rewarded": rewarded}


def bare_path(icrm: Any, server: str, batch: list[tuple[str, str]]) -> dict[str, Any]:
    import openai

    prompts = [icrm.render_prompt(conversation=[{"role": "user", "content": p}, {"role": "assistant", "content": c}])
               for p, c in batch]

    async def run() -> tuple[list[Any], list[float], float]:
        client = openai.AsyncOpenAI(base_url=server, api_key="unused", timeout=3600, max_retries=0)

        async def one(prompt: Any) -> Any:
            if icrm.engine.completion:
                return await client.completions.create(model=icrm.engine.model, prompt=prompt, max_tokens=1, temperature=0)
            return await client.chat.completions.create(model=icrm.engine.model, max_tokens=1, temperature=0,
                                                        messages=[{"role": "user", "content": prompt}])
        try:
            return await timed([one(p) for p in prompts])
        finally:
            await client.close()

    _, latencies, wall = asyncio.run(run())
    return {**percentiles(latencies), "samples_s": len(batch) / wall, "rewarded": len(batch)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--critique_samples", type=int, default=16, help="critique generates ~90 tokens a sample")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    from icrm import ICRM

    results: dict[str, dict[str, Any]] = {}
    with ICRM(method="logprob", use_cache=False) as owner:  # the worker, with logits kept for logprob
        server = str(owner.engine.clients[0].base_url).rstrip("/")  # http://127.0.0.1:PORT/v1
        for method, n in (("logprob", args.samples), ("critique", args.critique_samples)):
            batch = samples(n)
            options = {"worker_addrs": [server], "method": method, "use_cache": False}
            with ICRM(**options) as icrm:
                icrm.judge(conversation=[{"role": "user", "content": batch[0][0]},
                                         {"role": "assistant", "content": batch[0][1]}])  # warm the prefix cache
                results[method] = {"samples": n, "bare": bare_path(icrm, server, batch), "trl": trl_path(icrm, batch),
                                   "verl": verl_path(options, batch), "openrlhf": openrlhf_path(server, method, batch)}
            for path, r in results[method].items():
                if path != "samples":
                    print(f"  {method} {path}: p50 {r['p50_s']:.1f} s, {r['samples_s']:.2f}/s", file=sys.stderr)
    print(f"{'method':<10}{'path':<10}{'n':>4}{'p50 s':>8}{'p99 s':>8}{'samples/s':>11}{'x bare':>8}{'rewarded':>10}")
    for method, by_path in results.items():
        bare = by_path["bare"]["p50_s"]
        for path in ("bare", "trl", "verl", "openrlhf"):
            r = by_path[path]
            ratio = r["p50_s"] / bare
            mark = f" (<= {TARGET}: {'ok' if ratio <= TARGET else 'MISS'})" if method == "logprob" and path != "bare" else ""
            print(f"{method:<10}{path:<10}{by_path['samples']:>4}{r['p50_s']:>8.1f}{r['p99_s']:>8.1f}{r['samples_s']:>11.2f}"
                  f"{ratio:>8.2f}{r['rewarded']:>6}/{by_path['samples']}{mark}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
