"""`icrm report` at size: file size and load time of a report of 2,000 items.

Usage:
    python benchmarks/report.py [--items 2000] [--json out.json]

The items are LLMBar and HHH pairs (../shared/data/pairwise, cycled with fresh ids),
scored by the real `icrm score` against the mock judge, then `icrm report OUT --data IN`
(so every item carries its two conversations). The page is opened in Debian's Chromium
(headless, Playwright) five times; load time = the browser's load event (navigation
start to loadEventEnd, which includes building the item table, as the page's script
runs before it), median of the five. Also timed: filtering the table to one subset and
opening one item. Target: load under 3 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import MockProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "pairwise"
TARGET_S = 3.0


def pairs(n: int) -> list[dict]:
    from icrm.inputs import rewardbench_pair

    source = [(name, json.loads(line)) for name in ("llmbar", "hhh")
              for line in (DATA / f"{name}.jsonl").read_text().splitlines()]
    rows = []
    for i in range(n):
        name, row = source[i % len(source)]
        chosen, rejected = rewardbench_pair(row, name)
        rows.append({"id": f"{name}-{i}", "conversation_A": chosen, "conversation_B": rejected})
    return rows


def icrm(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "icrm.cli", *map(str, args)], capture_output=True, text=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs Chromium (apt-get install chromium) and playwright (pip install playwright)")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        source = tmp / "pairs.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in pairs(args.items)))
        mock = MockProcess(tmp)
        try:
            scored = icrm("score", source, "--output", tmp / "out.jsonl", "--rm_type", "pairwise", "--engine", "mock",
                          "--base_url", mock.base_url, "--num_shots", "3", "--concurrency", "64", "--progress", "false")
        finally:
            mock.stop()
        if scored.returncode not in (0, 1):
            sys.exit(scored.stderr[-2000:])
        start = time.perf_counter()
        report = icrm("report", tmp / "out.jsonl", "--data", source, "--output", tmp / "report.html")
        render_s = time.perf_counter() - start
        if report.returncode != 0:
            sys.exit(report.stderr[-2000:])
        page_path = tmp / "report.html"
        loads, filters, opens = [], [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for _ in range(5):
                page = browser.new_page()
                page.goto(page_path.as_uri(), wait_until="load")
                timing = page.evaluate("() => { const t = performance.getEntriesByType('navigation')[0];"
                                       " return t.loadEventEnd - t.startTime; }")
                loads.append(timing / 1000)
                rows = page.locator("#items tr.item").count()
                assert rows == args.items, rows
                filters.append(page.evaluate("""() => { const s = performance.now();
                    const f = document.getElementById('f-id'); f.value = 'hhh-';
                    f.dispatchEvent(new Event('input')); return performance.now() - s; }""") / 1000)
                opens.append(page.evaluate("""() => { const s = performance.now();
                    document.querySelector('#items tr.item:not([hidden])').click(); return performance.now() - s; }""") / 1000)
                page.close()
            browser.close()
        result = {
            "items": args.items, "file_mb": page_path.stat().st_size / 1e6, "render_s": render_s,
            "load_s": statistics.median(loads), "load_runs_s": loads, "filter_s": statistics.median(filters),
            "open_item_s": statistics.median(opens), "target_s": TARGET_S,
            "load_over_target": statistics.median(loads) / TARGET_S,
        }
    print(f"{args.items} items: {result['file_mb']:.1f} MB; `icrm report` {render_s:.1f} s; load event "
          f"{result['load_s']:.2f} s (median of 5; {result['load_over_target']:.2f}x the {TARGET_S:.0f} s target); "
          f"filter {result['filter_s'] * 1000:.0f} ms; open an item {result['open_item_s'] * 1000:.0f} ms")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
