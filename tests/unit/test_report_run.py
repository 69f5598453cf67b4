"""Reading runs back for reports: what is a run, what is not, and what survives a torn
or hostile results file."""

import json

import pytest

from icrm.errors import ConfigError
from icrm.report import load_run, render_report, select_items
from icrm.report.html import _script_json

PROVENANCE = {"model": "m", "engine": "mock", "rm_type": "individual", "method": "critique", "num_shots": 0,
              "fingerprint": "f00", "template_hash": "t", "id_field": "id"}


def record(rid, score=7, error_kind=None, raw="{}", **extra):
    return {"id": rid, "score": None if error_kind else score, "feedback": None, "raw_text": raw,
            "error": "boom" if error_kind else None, "error_kind": error_kind, "usage": {"prompt_tokens": 10,
            "completion_tokens": 2}, "provenance": PROVENANCE, **extra}


def write(path, lines):
    path.write_text("".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines))
    return path


def test_a_scored_file_becomes_items_with_their_errors_and_token_totals(tmp_path):
    out = write(tmp_path / "out.jsonl", [record("a"), record("b", error_kind="engine_status"),
                                         record("c", error_kind="parse"), '{"id": "d", "sco\n', record("a", score=9)])
    run = load_run(out)
    assert [i.id for i in run.items] == ["a", "b", "c"]  # the torn line skipped; "a" once, its last record
    assert run.items[0].score == 9 and run.items[0].status == "scored"
    assert run.items[1].status == "failed" and run.items[1].error_kinds == ["engine_status"]
    assert run.items[2].status == "unparsed" and run.items[2].parse_failure
    assert run.meta["tokens"] == {"prompt_tokens": 30, "completion_tokens": 6}
    assert run.counts() == {"scored": 1, "unparsed": 1, "failed": 1, "error:engine_status": 1, "error:parse": 1}
    assert run.distribution() == {"9": 1, "None": 2}


def test_input_rows_give_the_conversations_by_the_run_s_id_field(tmp_path):
    out = write(tmp_path / "out.jsonl", [record("x1")])
    data = write(tmp_path / "in.jsonl", [{"id": "x1", "conversation": [{"role": "user", "content": "hi"}]},
                                         "not json\n", {"no_id": 1}])
    run = load_run(out, data)
    assert run.items[0].judgements[0]["item"]["conversation"][0]["content"] == "hi"
    assert run.data_note is None
    assert "pass --data" in load_run(out).data_note


@pytest.mark.parametrize("setup, message", [
    (lambda p: p / "nothing-here", "no run at"),
    (lambda p: write(p / "empty.jsonl", []), "holds no result rows"),
    (lambda p: p, "holds no summary.json"),
])
def test_what_is_not_a_run_is_a_clear_error(tmp_path, setup, message):
    with pytest.raises(ConfigError, match=message):
        load_run(setup(tmp_path))


def test_a_directory_with_several_runs_names_them(tmp_path):
    for shots in ("0_shots", "3_shots"):
        (tmp_path / shots).mkdir()
        (tmp_path / shots / "summary.json").write_text("{}")
    with pytest.raises(ConfigError, match="holds 2 runs") as error:
        load_run(tmp_path)
    assert "3_shots" in str(error.value)


def test_a_corrupt_summary_is_a_clear_error(tmp_path):
    (tmp_path / "summary.json").write_text('{"meta": ')
    with pytest.raises(ConfigError, match="not readable JSON"):
        load_run(tmp_path)


def test_a_hostile_answer_cannot_end_the_page_s_data_block(tmp_path):
    hostile = '</script><script>alert(1)</script><!-- \u2028'
    out = write(tmp_path / "out.jsonl", [record("a", raw=hostile)])
    page = render_report([load_run(out)])
    assert hostile not in page and "</script><script>alert" not in page
    block = page.split('<script id="report-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(block)["runs"][0]["items"][0]["judgements"][0]["raw_text"] == hostile
    assert json.loads(_script_json({"x": "&<>"})) == {"x": "&<>"}


def test_items_are_selected_by_id_filter_and_seeded_sample(tmp_path):
    run = load_run(write(tmp_path / "out.jsonl", [record(f"r{i}", error_kind="parse" if i % 3 == 0 else None)
                                                  for i in range(9)]))
    assert [i.id for i in select_items(run, ["r4", "r1"])] == ["r4", "r1"]
    assert [i.id for i in select_items(run, where=["error_kind=parse"])] == ["r0", "r3", "r6"]
    assert select_items(run, random_n=4, seed=3) == select_items(run, random_n=4, seed=3)
    assert len(select_items(run, random_n=40)) == 9
    with pytest.raises(ConfigError, match="no item with id 'zz'"):
        select_items(run, ["zz"])
    with pytest.raises(ConfigError, match="field=value"):
        select_items(run, where=["subset"])
    with pytest.raises(ConfigError, match=">= 1"):
        select_items(run, random_n=0)
