"""Load test of `icrm serve` on loopback, backed by the mock server (bounded; stops by itself).

Usage: python benchmarks/serve_load.py [--requests 500] [--concurrency 50] [--json out.json]

Run 1 ("normal"): the service with room for the load (--max_concurrency 64): every one of
the N requests must come back 200 with a valid score; prints p50/p99 latency (ms) and
requests/s. Run 2 ("queue full"): the same load on a service limited to 4 running + 4
queued, with the mock taking 50 ms per answer: the overflow must be 503 with
Retry-After, the rest 200, and the service must still answer /health afterwards. Run 3
("batch full"): /v1/reward requests of 4 items each against 2 running + 2 queued.

Every run also counts the requests the judge (the mock) received: a refused request
must do no work, so judge requests = items of the admitted requests, never more.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import MockProcess  # noqa: E402

from icrm.engines.worker import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION = [{"role": "user", "content": "I want to book a flight"},
                {"role": "assistant", "content": "Sure, where do you want to go?"}]


def start_service(mock_url: str, *flags: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "serve", "--engine", "mock", "--base_url", mock_url,
                                "--port", str(port), "--max_retries", "0", *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError("service did not start")


async def load(url: str, requests: int, concurrency: int, items: int) -> tuple[list[tuple[int, float, dict]], float]:
    gate = asyncio.Semaphore(concurrency)
    if items == 1:
        path, body = "/service_output", {"source": 1, "data": {"conversation": CONVERSATION}}
    else:
        path, body = "/v1/reward", {"items": [{"conversation": CONVERSATION}] * items}
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def one() -> tuple[int, float, dict]:
            async with gate:
                start = time.perf_counter()
                response = await client.post(f"{url}{path}", json=body)
                return response.status_code, time.perf_counter() - start, {"body": response.json(),
                                                                           "retry_after": response.headers.get("retry-after")}
        start = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(requests)))
        return results, time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def run(mock_delay_s: float, flags: list[str], requests: int, concurrency: int, tmp: Path,
        items: int = 1) -> dict[str, float]:
    mock = MockProcess(tmp, delay_s=mock_delay_s)
    process, url = start_service(mock.base_url, *flags)
    try:
        results, seconds = asyncio.run(load(url, requests, concurrency, items))
        alive = httpx.get(f"{url}/health").status_code == 200
        judge_requests = mock.request_count()
    finally:
        process.terminate()
        process.wait(60)
        mock.stop()
    ok = [r for r in results if r[0] == 200]
    if items == 1:
        valid = sum(isinstance(r[2]["body"].get("score"), int) for r in ok)
    else:
        valid = sum(all(isinstance(x.get("score"), int) for x in r[2]["body"]["results"]) for r in ok)
    rejected = [r for r in results if r[0] == 503]
    latencies_ms = [r[1] * 1000 for r in ok]
    return {
        "requests": requests, "concurrency": concurrency, "answered": len(results),
        "ok_200": len(ok), "valid_scores": valid, "rejected_503": len(rejected),
        "rejected_with_retry_after": sum(r[2]["retry_after"] is not None for r in rejected),
        "other_status": len(results) - len(ok) - len(rejected),
        "p50_latency_ms": percentile(latencies_ms, 50), "p99_latency_ms": percentile(latencies_ms, 99),
        "throughput_requests_s": len(results) / seconds, "alive_after": alive,
        "items_admitted": len(ok) * items, "judge_requests": judge_requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "normal": run(0.0, ["--num_shots", "3", "--max_concurrency", "64", "--max_queue", "64"],
                          args.requests, args.concurrency, Path(tmp)),
            "queue_full": run(0.05, ["--num_shots", "3", "--max_concurrency", "4", "--max_queue", "4"],
                              args.requests, args.concurrency, Path(tmp)),
            "batch_full": run(0.05, ["--num_shots", "3", "--max_concurrency", "2", "--max_queue", "2"],
                              args.requests // 5, args.concurrency, Path(tmp), items=4),
        }
    print(f"{'run':<12}{'answered':>9}{'200':>6}{'valid':>7}{'503':>6}{'other':>7}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}"
          f"{'items in':>9}{'judge req':>10}  alive")
    for name, r in results.items():
        print(f"{name:<12}{r['answered']:>9}{r['ok_200']:>6}{r['valid_scores']:>7}{r['rejected_503']:>6}"
              f"{r['other_status']:>7}{r['p50_latency_ms']:>9.1f}{r['p99_latency_ms']:>9.1f}"
              f"{r['throughput_requests_s']:>8.1f}{r['items_admitted']:>9}{r['judge_requests']:>10}  {r['alive_after']}")
        if r["judge_requests"] > r["items_admitted"]:
            print(f"  FAIL {name}: the judge received {r['judge_requests']} requests for {r['items_admitted']} "
                  "admitted items: a refused request did work")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
