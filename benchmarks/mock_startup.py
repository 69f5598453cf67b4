"""Mock server: wall time from launching `icrm mock` to its first answer.

Usage: python benchmarks/mock_startup.py [--runs 5] [--json out.json]

Each run starts `python -m icrm.cli mock --config CFG --port P` as a fresh process and
times until POST /v1/completions answers 200. Prints the median and max in seconds and
the ratio to the 2 s target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from icrm.engines.worker import free_port

TARGET_S = 2.0


def one_run(config: Path) -> float:
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "mock", "--config", str(config), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"icrm mock exited with status {process.returncode}")
            try:
                r = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "hi"}, timeout=1)
                if r.status_code == 200:
                    return time.perf_counter() - start
            except httpx.HTTPError:
                time.sleep(0.01)
    finally:
        process.terminate()
        process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mock.yml"
        config.write_text('matches:\n  - response: "hi"\n')
        times = [one_run(config) for _ in range(args.runs)]
    result = {"runs": args.runs, "median_startup_s": statistics.median(times), "max_startup_s": max(times),
              "target_s": TARGET_S}
    print(f"{'benchmark':<28}{'median s':>10}{'max s':>10}{'median / target':>18}")
    print(f"{'mock startup to 1st answer':<28}{result['median_startup_s']:>10.2f}{result['max_startup_s']:>10.2f}"
          f"{result['median_startup_s'] / TARGET_S:>18.2f}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
