"""Trust, class 4: a results file describes one run. Resuming with other run settings is
an error naming them; duplicate ids are reported, never shadowed."""

import json

import pytest

from tests.conftest import ROOT
from tests.integration.helpers import feedback, icrm_cli, one_line_error, pair_feedback, read_jsonl, write_jsonl

DATA = ROOT.parent / "shared" / "data" / "pairwise" / "hhh.jsonl"


def rows(n):
    return [{"id": f"r{i}", "conversation": [{"role": "user", "content": f"q{i}"},
                                             {"role": "assistant", "content": "a"}]} for i in range(n)]


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
@pytest.mark.parametrize(("change", "named"), [
    (("--temperature", "1.0"), "temperature"),
    (("--num_shots", "1"), "num_shots"),
    (("--model_name", "other-judge"), "model"),
    (("--shot_sampling_mode", "random"), "shot_sampling_mode"),
    (("--seed", "7"), "seed"),
])
def test_resuming_with_other_run_settings_is_refused_naming_them(mock_llm, tmp_path, change, named):
    source = write_jsonl(tmp_path / "in.jsonl", rows(4))
    out = tmp_path / "out.jsonl"
    base = ("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    assert icrm_cli(*base).returncode == 0
    requests = len(mock_llm.requests())
    line = one_line_error(icrm_cli(*base, *change))
    assert f"{named}:" in line and "--overwrite True" in line and "another output" in line
    assert len(mock_llm.requests()) == requests and len(read_jsonl(out)) == 4  # no work, nothing appended
    started_over = icrm_cli(*base, *change, "--overwrite", "True")
    assert started_over.returncode == 0, started_over.stderr
    assert json.loads(started_over.stdout)["scored"] == 4 and len(read_jsonl(out)) == 4


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": pair_feedback("A+")}]})
@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
def test_eval_at_another_temperature_does_not_reuse_the_first_runs_judgements(mock_llm, tmp_path):
    base = ("eval", "rewardbench", "--engine", "mock", "--base_url", mock_llm.base_url, "--results_dir", tmp_path,
            "--data", DATA, "--limit", "5", "--num_shots", "0")
    assert icrm_cli(*base).returncode == 0
    line = one_line_error(icrm_cli(*base, "--temperature", "1.0"))
    assert "temperature: 0.0 there, 1.0 now" in line and "--overwrite_results True" in line
    summary = tmp_path / "rewardbench" / "pairwise" / "mock" / "critique" / "0_shots" / "summary.json"
    assert json.loads(summary.read_text())["meta"]["generation_kwargs"]["temperature"] == 0.0
    rerun = icrm_cli(*base, "--temperature", "1.0", "--overwrite_results", "true")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(summary.read_text())["meta"]["generation_kwargs"]["temperature"] == 1.0


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_duplicate_ids_are_reported_not_shadowed(mock_llm, tmp_path):
    first, second = rows(2)
    records = [{**first, "id": 1}, {**second, "id": "1"}, {**second, "id": "2"}]
    source = write_jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0")
    assert result.returncode == 1
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert by_id["1"]["score"] == 7 and by_id["2"]["score"] == 7
    assert by_id["1@line:2"]["error_kind"] == "input" and "duplicate id '1' (first on row 1)" in by_id["1@line:2"]["error"]
    assert len(mock_llm.requests()) == 2  # the duplicate was not judged into the first one's row
