"""Rewards for RL training: per-sample latency (p50/p99) and samples/s through each path a
trainer uses — the TRL reward function, verl's compute_score, OpenRLHF's /get_reward —
with critique and logprob, against a bare one-token completion of the same judge prompts
on the same server, in one run.

Usage:
    python benchmarks/rl_reward.py [--samples 64] [--critique_samples 16] [--methods logprob,critique]
                                   [--paths bare,trl,...] [--json out.json]

One llama.cpp worker with the embedded model (started with logits kept, so logprob runs;
it serves one request at a time), individual mode, the default 3 shots, temperature 0,
the generation cache off. Samples: the first N HHH prompts with their chosen answers,
all N sent at once (as a trainer's wave):
- TRL: one `reward_function` call with the N samples (the trainer waits for the batch,
  so every sample's latency is the call's);
- verl: N concurrent `compute_score_async` calls (its reward loop, per sample);
- OpenRLHF: N concurrent one-sample POSTs to ``icrm serve``'s /get_reward;
- slime (remote): N concurrent POSTs of slime's ``remote_rm`` body to /slime/reward;
- slime (in process): N concurrent ``icrm.integrations.slime.reward(args, sample)`` calls;
- AReaL: N concurrent calls of `ICRMReward` through AReaL's own ``AsyncRewardWrapper``
  (its process pool, 2 workers) when ``areal`` is installed;
- verifiers: N concurrent ``ICRMJudge.score`` calls on verifiers' own ``Trace`` when
  ``verifiers`` is installed;
- ART: the same N samples as N/2 groups of two (each HHH prompt's chosen and rejected
  answer, ART ``TrajectoryGroup``s), N/2 concurrent ``ruler_score_group`` calls judging
  each response on its own (the judge's ``individual`` group strategy), when
  ``openpipe-art`` is installed; its bare row completes the same N conversations;
- bare: N concurrent ``max_tokens=1`` completions of the same rendered prompts, nothing
  else asked — the floor any path pays.

Targets: logprob's p50 through each path <= 1.2x the bare completion's at 64 concurrent
samples, every sample rewarded (issue 22); samples/s ÷ the bare completion's >= 0.8 with
logprob (issue 26).
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


def samples(n: int) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in HHH.read_text().splitlines()]
    return [(r["prompt"], r["chosen"]) for r in rows[:n]]


def group_samples(n: int) -> list[tuple[str, str]]:
    """n samples as n/2 groups of two: each prompt's chosen then rejected answer."""
    rows = [json.loads(line) for line in HHH.read_text().splitlines()][:n // 2]
    return [(r["prompt"], answer) for r in rows for answer in (r["chosen"], r["rejected"])]


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


def service_paths(server: str, method: str, batch: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """OpenRLHF's /get_reward and slime's /slime/reward on one ``icrm serve``."""
    from icrm.engines.worker import free_port

    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "icrm.cli", "serve", "--worker_addrs", server, "--method", method, "--port", str(port),
         "--use_cache", "false", "--max_concurrency", str(len(batch)), "--max_queue", str(4 * len(batch))],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    out = {}
    try:
        for _ in range(1200):
            try:
                if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        bodies = {"openrlhf": ("/get_reward", lambda p, c: {"query": [p + c], "prompts": [p], "labels": [None]}),
                  "slime_remote": ("/slime/reward?reward_key=reward", lambda p, c: {"prompt": p, "response": c,
                                                                                   "label": None})}
        for path, (route, body) in bodies.items():
            async def run() -> tuple[list[Any], list[float], float]:
                async with httpx.AsyncClient(timeout=3600) as client:
                    async def post(prompt: str, completion: str) -> dict[str, Any]:
                        return (await client.post(f"{url}{route}", json=body(prompt, completion))).json()
                    return await timed([post(p, c) for p, c in batch])

            results, latencies, wall = asyncio.run(run())
            failed = [(r.get("extra_logs", {}).get("icrm_failed") or [r.get("icrm_failed")])[0] for r in results]
            out[path] = {**percentiles(latencies), "samples_s": len(batch) / wall,
                         "rewarded": sum(1 for f in failed if f == 0.0)}
    finally:
        service.terminate()
        service.wait(30)
    return out


def slime_path(options: dict[str, Any], batch: list[tuple[str, str]]) -> dict[str, Any]:
    import os
    from types import SimpleNamespace

    from icrm.integrations import slime

    for key, value in options.items():
        os.environ[f"ICRM_{key.upper()}"] = ",".join(value) if isinstance(value, list) else str(value)
    slime._judge()  # started before the clock, as in a running trainer
    args = SimpleNamespace(reward_key="reward")
    samples_ = [SimpleNamespace(prompt=p, response=c, metadata={}) for p, c in batch]

    async def run() -> tuple[list[Any], list[float], float]:
        return await timed([slime.reward(args, s) for s in samples_])

    results, latencies, wall = asyncio.run(run())
    return {**percentiles(latencies), "samples_s": len(batch) / wall,
            "rewarded": sum(not r["icrm_failed"] for r in results)}


def areal_path(options: dict[str, Any], batch: list[tuple[str, str]]) -> dict[str, Any] | None:
    import importlib.util

    if importlib.util.find_spec("areal") is None:
        return None
    sys.path.insert(0, str(ROOT))
    from tests.integration.test_areal import async_reward_wrapper

    from icrm.integrations.areal import ICRMReward

    wrapper = async_reward_wrapper()(ICRMReward(**options), timeout_seconds=3600, max_workers=2)

    async def run() -> tuple[list[Any], list[float], float]:
        await wrapper(batch[0][0], batch[0][1], [], [])  # the pool's workers start their judges: not timed
        return await timed([wrapper(p, c, [], []) for p, c in batch])

    results, latencies, wall = asyncio.run(run())
    return {**percentiles(latencies), "samples_s": len(batch) / wall, "rewarded": len(results)}


def verifiers_path(options: dict[str, Any], batch: list[tuple[str, str]]) -> dict[str, Any] | None:
    import importlib.util

    if importlib.util.find_spec("verifiers") is None:
        return None
    from verifiers.v1.configs.judge import resolve_judges
    from verifiers.v1.task import TaskData
    from verifiers.v1.trace import Trace
    from verifiers.v1.utils.loaders import judge_class

    from icrm.integrations.verifiers import PLUGIN_ID

    [config] = resolve_judges([{"id": PLUGIN_ID, "icrm": options}])
    judge = judge_class(PLUGIN_ID)(config)

    async def run() -> tuple[list[Any], list[float], float]:
        return await timed([judge.score(TaskData(prompt=p), Trace.model_construct(root_reply=c, info={}, extra_usage=[]))
                            for p, c in batch])

    results, latencies, wall = asyncio.run(run())
    return {**percentiles(latencies), "samples_s": len(batch) / wall, "rewarded": len(results)}


def art_path(icrm: Any, server: str, n: int) -> dict[str, dict[str, Any]] | None:
    """ART's ``ruler_score_group`` on groups of two, and the bare completion of the same
    conversations (see the module docstring)."""
    import importlib.util
    import os

    if importlib.util.find_spec("art") is None:
        return None
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # ART imports litellm: no price list fetched
    import art

    from icrm.integrations.art import ruler_score_group

    batch = group_samples(n)
    groups = [art.TrajectoryGroup([art.Trajectory(messages_and_choices=[{"role": "user", "content": p},
                                                                        {"role": "assistant", "content": c}], reward=0.0)
                                   for p, c in batch[g:g + 2]]) for g in range(0, len(batch), 2)]

    async def run() -> tuple[list[Any], list[float], float]:
        return await timed([ruler_score_group(group, icrm, swallow_exceptions=True) for group in groups])

    results, latencies, wall = asyncio.run(run())
    scored = sum(len(r.trajectories) for r in results if r is not None)
    # a group's latency is each of its samples' latency
    per_sample = [seconds for seconds in latencies for _ in range(2)]
    return {"art_bare": bare_path(icrm, server, batch),
            "art": {**percentiles(per_sample), "samples_s": len(batch) / wall, "rewarded": scored}}


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
    parser.add_argument("--methods", default="logprob,critique")
    parser.add_argument("--paths", default=None, help="comma-separated: bare, trl, verl, openrlhf, slime_remote, slime, "
                                                      "areal, verifiers, art (default: all; bare always runs)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    from icrm import ICRM

    wanted = None if args.paths is None else {"bare", *args.paths.split(",")}

    def run(path: str, measure: Any) -> Any:
        return measure() if wanted is None or path in wanted else None

    results: dict[str, dict[str, Any]] = {}
    with ICRM(method="logprob", use_cache=False) as owner:  # the worker, with logits kept for logprob
        server = str(owner.engine.clients[0].base_url).rstrip("/")  # http://127.0.0.1:PORT/v1
        for method, n in [(m, args.samples if m == "logprob" else args.critique_samples)
                          for m in args.methods.split(",")]:
            batch = samples(n)
            options = {"worker_addrs": [server], "method": method, "use_cache": False}
            with ICRM(**options) as icrm:
                icrm.judge(conversation=[{"role": "user", "content": batch[0][0]},
                                         {"role": "assistant", "content": batch[0][1]}])  # warm the prefix cache
                results[method] = {"samples": n, "bare": bare_path(icrm, server, batch),
                                   "trl": run("trl", lambda: trl_path(icrm, batch)),
                                   "verl": run("verl", lambda: verl_path(options, batch)),
                                   **{k: v for k, v in (service_paths(server, method, batch) if wanted is None or
                                                        wanted & {"openrlhf", "slime_remote"} else {}).items()
                                      if wanted is None or k in wanted},
                                   "slime": run("slime", lambda: slime_path(options, batch)),
                                   "areal": run("areal", lambda: areal_path(options, batch)),
                                   "verifiers": run("verifiers", lambda: verifiers_path(options, batch)),
                                   **(run("art", lambda: art_path(icrm, server, n)) or {})}
            results[method] = {k: v for k, v in results[method].items() if v is not None}
            for path, r in results[method].items():
                if path != "samples":
                    print(f"  {method} {path}: p50 {r['p50_s']:.1f} s, {r['samples_s']:.2f}/s", file=sys.stderr)
    print(f"{'method':<10}{'path':<14}{'n':>4}{'p50 s':>8}{'p99 s':>8}{'samples/s':>11}{'p50 x bare':>11}"
          f"{'rate / bare':>12}{'rewarded':>10}")
    for method, by_path in results.items():
        for path, r in by_path.items():
            if path == "samples":
                continue
            bare = by_path["art_bare" if path == "art" else "bare"]  # ART's groups are other conversations
            rate = r["samples_s"] / bare["samples_s"]
            mark = f" (>= 0.8: {'ok' if rate >= 0.8 else 'MISS'})" if method == "logprob" and "bare" not in path else ""
            print(f"{method:<10}{path:<14}{by_path['samples']:>4}{r['p50_s']:>8.1f}{r['p99_s']:>8.1f}{r['samples_s']:>11.2f}"
                  f"{r['p50_s'] / bare['p50_s']:>11.2f}{rate:>12.2f}{r['rewarded']:>6}/{by_path['samples']}{mark}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
