"""Scoring on Ray: items/s with 1 and 2 actors, on 1 and 2 Ray nodes, against the mock
server answering in 0.2 s; the overhead against single-process `icrm score` at the same
total concurrency; and the driver's peak RSS as the input grows (streamed: flat).

Usage:
    python benchmarks/ray_scale.py [--rows 2400] [--concurrency 16] [--rss_rows 10000,100000] [--json out.json]

Every run is the real command (`icrm score ... --backend ray --ray_address ...`) against a
local cluster started here with `ray start` (1 or 2 nodes on 127.0.0.1) and stopped
after. items/s = rows / the run's own seconds (Ray's start-up of the dataset and its
actors included); "steady" = rows after the first / the time after the first row was
written (start-up excluded). Targets: 2 actors >= 1.8x one; Ray with one actor within
15 % of the single-process run at the same concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import MockProcess  # noqa: E402

from icrm.engines.worker import free_port  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}  # Ray 2.60: token auth
NODE_FLAGS = ("--num-cpus=2", "--object-store-memory=150000000", "--node-ip-address=127.0.0.1", "--disable-usage-stats")


class Cluster:
    """A local Ray cluster of `nodes` nodes, started with `ray start`."""

    def __init__(self, nodes: int, tmp: Path) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        ray = shutil.which("ray") or "ray"
        subprocess.run([ray, "start", "--head", f"--port={self.address.split(':')[1]}", "--include-dashboard=false",
                        f"--temp-dir={tmp / 'ray'}", *NODE_FLAGS], env=ENV, check=True, capture_output=True)
        for _ in range(nodes - 1):
            subprocess.run([ray, "start", f"--address={self.address}", *NODE_FLAGS], env=ENV, check=True,
                           capture_output=True)

    def stop(self) -> None:
        subprocess.run([shutil.which("ray") or "ray", "stop", "--force"], env=ENV, capture_output=True)


def write_rows(path: Path, n: int) -> Path:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"r{i}", "conversation": [{"role": "user", "content": f"Question {i}?"},
                                                                {"role": "assistant", "content": f"Answer {i}."}]}) + "\n")
    return path


def score(mock: MockProcess, source: Path, output: Path, *flags: str) -> dict[str, Any]:
    """Run `icrm score`; its items/s and the driver's peak RSS (MB)."""
    output.unlink(missing_ok=True)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "score", str(source), "--output", str(output),
                                "--engine", "mock", "--base_url", mock.base_url, "--num_shots", "0", *flags],
                               env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, first_row_s = 0.0, None
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            peak = max(peak, watched.memory_info().rss / 2**20)
        except psutil.Error:
            pass
        if first_row_s is None and output.exists() and output.stat().st_size > 0:
            first_row_s = time.perf_counter() - start
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"icrm score failed: {stderr[-2000:]}")
    summary = json.loads(stdout)
    first_row_s = first_row_s or seconds
    return {"items_s": summary["scored"] / summary["seconds"], "wall_items_s": summary["scored"] / seconds,
            "first_row_s": first_row_s, "steady_items_s": (summary["scored"] - 1) / max(seconds - first_row_s, 1e-9),
            "scored": summary["scored"], "driver_peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rss_rows", default="10000,100000")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    c = str(args.concurrency)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = write_rows(tmp / "in.jsonl", args.rows)
        mock = MockProcess(tmp, delay_s=0.2)
        try:
            results["single process"] = score(mock, source, tmp / "out.jsonl", "--concurrency", c)
            for nodes in (1, 2):
                cluster = Cluster(nodes, tmp)
                try:
                    for actors in (1, 2):
                        results[f"ray {nodes} node(s), {actors} actor(s)"] = score(
                            mock, source, tmp / "out.jsonl", "--backend", "ray", "--ray_address", cluster.address,
                            "--num_actors", str(actors), "--concurrency", c)
                        print(f"  {nodes} node(s), {actors} actor(s): "
                              f"{results[f'ray {nodes} node(s), {actors} actor(s)']['items_s']:.1f} items/s",
                              file=sys.stderr)
                finally:
                    cluster.stop()
        finally:
            mock.stop()
        fast = MockProcess(tmp, delay_s=0.0)
        cluster = Cluster(1, tmp)
        try:
            for n in map(int, args.rss_rows.split(",")):
                big = write_rows(tmp / f"big_{n}.jsonl", n)
                results[f"driver RSS, {n} rows"] = score(fast, big, tmp / "big.jsonl", "--backend", "ray",
                                                         "--ray_address", cluster.address, "--num_actors", "2",
                                                         "--concurrency", "64")
                print(f"  {n} rows: driver peak {results[f'driver RSS, {n} rows']['driver_peak_rss_mb']:.0f} MB",
                      file=sys.stderr)
        finally:
            cluster.stop()
            fast.stop()
    single = results["single process"]["items_s"]
    steady = results["single process"]["steady_items_s"]
    print(f"{'run':<32}{'items/s':>9}{'x single':>10}{'first row s':>13}{'steady/s':>10}{'x single':>10}"
          f"{'driver RSS MB':>15}")
    for name, r in results.items():
        print(f"{name:<32}{r['items_s']:>9.1f}{r['items_s'] / single:>10.2f}{r['first_row_s']:>13.1f}"
              f"{r['steady_items_s']:>10.1f}{r['steady_items_s'] / steady:>10.2f}{r['driver_peak_rss_mb']:>15.0f}")
    for nodes in (1, 2):
        one, two = (results[f"ray {nodes} node(s), {a} actor(s)"]["items_s"] for a in (1, 2))
        print(f"{nodes} node(s): 2 actors / 1 actor = {two / one:.2f} (target >= 1.8)")
    overhead = 1 - results["ray 1 node(s), 1 actor(s)"]["items_s"] / single
    steady_overhead = 1 - results["ray 1 node(s), 1 actor(s)"]["steady_items_s"] / steady
    print(f"overhead of Ray, 1 actor vs single process at concurrency {c}: {overhead:.1%} of items/s, "
          f"{steady_overhead:.1%} after the first row (target <= 15%)")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
