"""`icrm report` and `icrm show` on real runs: a JudgeBench evaluation judged by the mock
server in both orders, with correct and incorrect rows, ties, an unparseable answer, a
request error and position-inconsistent rows; the page opened in a real headless
Chromium (Debian's package, driven by Playwright), with screenshots.

Set REPORT_SCREENSHOTS=DIR to keep the screenshots."""

import json
import os
import shutil

import pytest

from icrm.mock import MockServer
from tests.conftest import ROOT
from tests.integration.helpers import icrm_cli, pair_feedback, write_jsonl

JUDGEBENCH = ROOT.parent / "shared" / "data" / "judgebench" / "judgebench_gpt-4o-2024-05-13.jsonl"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Run A's judge. Markers in the question steer it; otherwise it prefers the response that
# starts with RIGHT in whichever slot it sits, so both orders agree.
RULES_A = {"matches": [
    {"regex": r"\[ERRORQ\]", "status": 500, "error": "the judge broke"},
    {"regex": r"\[GARBLEQ\]", "response": "I think both are fine, really."},
    {"regex": r"\[TIEQ\]", "response": pair_feedback("A=B")},
    {"regex": r"\[STUBBORNQ\]", "response": pair_feedback("A+")},  # A whatever A is: the orders disagree
    {"regex": r"<\|begin_of_response_A\|>\nRIGHT", "response": pair_feedback("A++")},
    {"response": pair_feedback("B+")},
]}
# Run B's judge: follows RIGHT on the tie and stubborn rows too.
RULES_B = {"matches": [r for r in RULES_A["matches"] if r.get("regex") not in (r"\[TIEQ\]", r"\[STUBBORNQ\]")]}
MARKERS = ["", "", "", "", "", "", "[TIEQ]", "[STUBBORNQ]", "[STUBBORNQ]", "[GARBLEQ]", "[ERRORQ]", "", "", "", ""]


def judgebench_rows():
    """15 real JudgeBench questions from every family; the responses say which is right.
    Rows 3, 4 and 13 are labelled against the judge (it prefers the wrong one)."""
    rows = [json.loads(line) for line in JUDGEBENCH.read_text().splitlines()]
    picked = [r for family in ("mmlu", "livebench-math", "livebench-reasoning", "livecodebench")
              for r in [r for r in rows if r["source"].startswith(family)][:4]][:15]
    out = []
    for i, (row, marker) in enumerate(zip(picked, MARKERS)):
        right, wrong = f"RIGHT: the answer to question {i} is 42.", f"WRONG: question {i} has no answer at all, I think."
        a_is_right = i % 2 == 0
        label = "A>B" if a_is_right else "B>A"
        if i in (3, 4, 13):
            label = "B>A" if a_is_right else "A>B"
        out.append({**row, "question": f"{row['question']} {marker}".strip(), "label": label,
                    "response_A": right if a_is_right else wrong, "response_B": wrong if a_is_right else right})
    return out


def evaluate(base_url, source, results_dir):
    return icrm_cli("eval", "judgebench", "--data", source, "--engine", "mock", "--base_url", base_url,
                    "--num_shots", "2", "--max_retries", "0", "--results_dir", results_dir, "--progress", "false")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two evaluated runs of the same rows: (run A's directory, run B's directory)."""
    if not JUDGEBENCH.exists():
        pytest.skip("../shared/data is not beside the checkout")
    tmp = tmp_path_factory.mktemp("report")
    source = write_jsonl(tmp / "judgebench.jsonl", judgebench_rows())
    dirs = []
    for name, rules in (("a", RULES_A), ("b", RULES_B)):
        with MockServer(rules) as base_url:
            result = evaluate(base_url, source, tmp / name)
        assert result.returncode == 1, result.stderr[-2000:]  # the request error and the unparseable answer
        dirs.append(next((tmp / name).rglob("summary.json")).parent)
    return dirs


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no Chromium: .ci/run installs Debian's chromium package")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_page(browser, path):
    """The report in a fresh page; returns (page, every URL it requested)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri())
    return page, requests


def screenshot(page, tmp_path, name):
    path = tmp_path / name
    page.screenshot(path=path, full_page=False)
    keep = os.environ.get("REPORT_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, os.path.join(keep, name))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one


def visible_ids(page):
    return {row.get_attribute("data-id") for row in page.locator("#items tr.item:visible").all()}


def test_the_report_shows_the_summary_the_items_and_makes_no_request(runs, browser, tmp_path):
    run = runs[0]
    result = icrm_cli("report", run, "--output", tmp_path / "report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run / "summary.json").read_text())
    page, requests = open_page(browser, tmp_path / "report.html")

    # The subset table holds summary.json's numbers.
    assert len(summary["subsets"]) >= 3
    for name, subset in summary["subsets"].items():
        row = page.locator(f"table.scores tr.subset[data-name='{name}']")
        assert row.locator("td.acc").inner_text() == f"{subset['accuracy']:.3f}"
        assert row.locator("td.n").inner_text() == str(subset["n"])
        assert row.locator("td.ties").inner_text() == str(subset["ties"])
        assert row.locator("td.unparsed").inner_text() == str(subset["parse_failures"])
        assert row.locator("td.ci").inner_text() == f"[{subset['accuracy_ci'][0]:.2f}, {subset['accuracy_ci'][1]:.2f}]"
    overall = page.locator("table.scores tr.section[data-name='overall'] td.acc").inner_text()
    assert overall == f"{summary['sections']['overall']['score']:.3f}"
    counts = summary["counts"]
    assert counts["rows_failed"] == 1 and counts["parse_failures"] == 1 and counts["ties"] >= 1
    shown = page.locator("p.counts").first.inner_text()
    assert f"ties {counts['ties']}" in shown and f"unparsed {counts['parse_failures']}" in shown
    screenshot(page, tmp_path, "report-summary.png")

    # Filtering to "incorrect" shows exactly the rows that scored 0.
    page.select_option("#f-status", "incorrect")
    incorrect = {rid for rid, s in summary["row_scores"].items() if s["score"] == 0}
    assert 3 <= len(incorrect) < len(summary["row_scores"])
    assert visible_ids(page) == incorrect
    assert page.locator("#shown").inner_text() == f"{len(incorrect)} of 15 items"

    # The position-inconsistent rows, and the row whose request failed.
    page.select_option("#f-status", "")
    page.check("#f-inconsistent")
    inconsistent = {rid for rid, s in summary["row_scores"].items() if s["consistent"] is False}
    assert len(inconsistent) == 2 and visible_ids(page) == inconsistent
    page.uncheck("#f-inconsistent")
    page.select_option("#f-error", "engine_status")
    assert len(visible_ids(page)) == 1 and visible_ids(page).isdisjoint(summary["row_scores"])
    page.select_option("#f-error", "")

    # An item's raw answer, the conversations and the shots are visible once opened.
    garbled = next(json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()
                   if json.loads(line)["error_kind"] == "parse")
    row = page.locator(f"#items tr.item[data-id='{garbled['row_id']}']")
    row.click()
    detail = page.locator("#items tr.detail-row")
    assert detail.locator("pre.raw").first.is_visible()
    assert detail.locator("pre.raw").first.inner_text() == "I think both are fine, really."
    assert "shots: " in detail.inner_text() and "[GARBLEQ]" not in detail.inner_text()  # conversations folded
    detail.locator("details summary").first.click()
    assert "[GARBLEQ]" in detail.inner_text()
    detail.scroll_into_view_if_needed()
    row.scroll_into_view_if_needed()
    screenshot(page, tmp_path, "report-item.png")

    assert requests == [(tmp_path / "report.html").as_uri()]  # the page alone: no network at view time
    page.close()


def test_two_runs_side_by_side_show_the_deltas_and_the_items_they_disagree_on(runs, browser, tmp_path):
    result = icrm_cli("report", *runs, "--output", tmp_path / "comparison.html")
    assert result.returncode == 0, result.stderr[-2000:]
    a, b = (json.loads((run / "summary.json").read_text()) for run in runs)
    page, requests = open_page(browser, tmp_path / "comparison.html")
    for name in a["subsets"]:
        delta = b["subsets"][name]["accuracy"] - a["subsets"][name]["accuracy"]
        cell = page.locator(f"#comparison tr.subset[data-name='{name}'] td.delta").inner_text()
        assert cell == f"{delta:+.3f}"
    page.check("#f-disagree")
    differ = {rid for rid in a["row_scores"] if a["row_scores"][rid]["score"] != b["row_scores"][rid]["score"]}
    assert differ and differ <= visible_ids(page)
    assert len(visible_ids(page)) == 3  # the tie and the two stubborn rows: B followed RIGHT on them
    assert requests == [(tmp_path / "comparison.html").as_uri()]
    page.close()


def test_show_prints_an_item_with_its_answer_and_the_prompt_icrm_sent(runs):
    run = runs[0]
    records = [json.loads(line) for line in (run / "rows.jsonl").read_text().splitlines()]
    # The [TIEQ] row: a tie in both orders (a stubborn row's two orders also combine into A=B).
    tie = next(r for r in records if r["choice"] == "A=B" and set((r["order_verdicts"] or {}).values()) == {"A=B"})
    result = icrm_cli("show", run, "--id", tie["row_id"], "--prompt")
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert f"id: {tie['row_id']}" in out and "[TIEQ]" in out and '"choice": "A=B"' in out
    assert "[shots] " + ", ".join(tie["provenance"]["shot_ids"]) in out
    assert "<|begin_of_response_A|>" in out  # the prompt, rebuilt from the run's settings
    assert "not rebuilt" not in out

    failed = icrm_cli("show", run, "--where", "status=failed")
    assert failed.returncode == 0 and "[error] engine_status" in failed.stdout and "[ERRORQ]" in failed.stdout
    sample = icrm_cli("show", run, "--random", "3", "--seed", "1")
    assert sample.returncode == 0 and sample.stdout.count("\nid: ") == 3

    unknown = icrm_cli("show", run, "--id", "no-such-row")
    assert unknown.returncode == 2 and "no item with id 'no-such-row'" in unknown.stderr
    bad = icrm_cli("show", run, "--where", "colour=red")
    assert bad.returncode == 2 and "--where takes field=value" in bad.stderr


def test_a_scored_file_reports_its_rows_and_conversations(tmp_path, browser):
    rows = [{"id": f"r{i}", "conversation": [{"role": "user", "content": f"q{i}"},
                                             {"role": "assistant", "content": "FAIL" if i == 2 else f"a{i}"}]}
            for i in range(4)]
    source = write_jsonl(tmp_path / "in.jsonl", rows)
    rules = {"matches": [{"regex": r"<\|begin_of_response\|>\nFAIL", "status": 500, "error": "broke"},
                         {"response": json.dumps({"intent": "i", "checklist": "c", "strengths": "s",
                                                  "weaknesses": "w", "score": 6})}]}
    with MockServer(rules) as base_url:
        scored = icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--engine", "mock", "--base_url",
                          base_url, "--num_shots", "0", "--max_retries", "0")
    assert scored.returncode == 1
    result = icrm_cli("report", tmp_path / "out.jsonl", "--data", source)
    assert result.returncode == 0, result.stderr[-2000:]
    page, requests = open_page(browser, tmp_path / "out.report.html")  # named after the scored file
    assert "scored 3" in page.locator("p.counts").inner_text() and "failed 1" in page.locator("p.counts").inner_text()
    page.locator("#items tr.item[data-id='r1']").click()
    page.locator("#items tr.detail-row details summary").click()
    assert "a1" in page.locator("#items tr.detail-row").inner_text()
    assert requests == [(tmp_path / "out.report.html").as_uri()]
    page.close()
