"""llama.cpp worker: seconds per judgement and worker RSS with its RAM prompt cache off / on.

Usage: python benchmarks/llamacpp_prompt_cache.py [--rows 8] [--json out.json]

Judges chosen and rejected of the first ROWS LLMBar rows (individual mode, 3 fixed shots,
icrm's generation cache off) on one embedded-model worker started with ``--cache False``
(icrm's default) and then with ``--cache True``. Prints seconds per judgement, the worker's
RSS at the end in MB, both ratios, and whether the scores agree. The reason icrm starts
workers without the cache: each saved state carries a ~100 MB logits copy that the
cache's 2 GiB cap does not count (see `icrm.engines.local.llamacpp_argv`).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from icrm import ICRM

LLMBAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "pairwise" / "llmbar.jsonl"


def conversation(prompt: str | list[dict[str, str]], response: str) -> list[dict[str, str]]:
    turns = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    return [*turns, {"role": "assistant", "content": response}]


def worker_rss_mb(icrm: ICRM) -> float:
    (worker,) = icrm.engine.workers
    for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc status")


def run(cache: bool, rows: list[dict]) -> dict:
    with ICRM(rm_type="individual", worker_args=["--cache", str(cache)], use_cache=False) as icrm:
        start = time.perf_counter()
        scores = [icrm.judge(conversation=conversation(r["prompt"], r[side])).score
                  for r in rows for side in ("chosen", "rejected")]
        seconds = (time.perf_counter() - start) / len(scores)
        return {"cache": cache, "s_per_judgement": seconds, "worker_rss_mb": worker_rss_mb(icrm), "scores": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with LLMBAR.open() as f:
        rows = [json.loads(line) for _, line in zip(range(args.rows), f)]
    off, on = run(False, rows), run(True, rows)
    result = {"off": off, "on": on, "time_ratio_on_over_off": on["s_per_judgement"] / off["s_per_judgement"],
              "rss_ratio_on_over_off": on["worker_rss_mb"] / off["worker_rss_mb"], "same_scores": off["scores"] == on["scores"]}
    for r in (off, on):
        print(f"--cache {r['cache']!s:<5}  {r['s_per_judgement']:.2f} s/judgement  worker RSS {r['worker_rss_mb']:.0f} MB")
    print(f"on/off: time {result['time_ratio_on_over_off']:.2f}, RSS {result['rss_ratio_on_over_off']:.2f}; "
          f"same scores: {result['same_scores']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
