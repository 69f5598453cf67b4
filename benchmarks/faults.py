"""Fault injection: a battery of generated hostile variants (`tests.hostile`,
`tests.hostile_servers`) run through real icrm components, each checked for the trust
promise of its class. Prints tried / clean / defects per class; a defect is a variant
that broke the promise (a verdict from a hostile answer, an ``internal`` error, a
traceback, a lost row, a leaked key, a raw control character, a timeout not kept).

Usage:
    python benchmarks/faults.py [--seed 0] [--scale 1.0] [--json out.json]

Classes (each variant at random positions, sizes and encodings from the seed):
- ``parse.*``: judge answers for the parser (echoes across markers and headings,
  placeholders, duplicate keys, repaired junk, cut answers, megabytes of junk, controls).
- ``server.*``: broken response bodies from a mock judge (logprobs, usage, choice counts,
  lone surrogates), judged by a real `ICRM`.
- ``input.*``: hostile JSONL lines among good ones, scored by a real run.
- ``timeout.*``: hostile HTTP servers (drip, hang, endless, huge, HTML, garbage).
- ``refusal.*``: command lines that cannot run: refused before any request.
- ``secret``: provider keys echoed by a server's error: redacted.
- ``terminal``: controls in ids, texts and answers shown by ``icrm show``: escaped.
- ``results.*``: outputs held by another run, foreign files, earlier rows of other runs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hostile import (  # noqa: E402
    CONTROLS,
    answer_bodies,
    answers,
    input_lines,
    key_echoes,
    logprob_bodies,
    terminal_texts,
)
from tests.hostile_servers import MODES, HostileServer  # noqa: E402

FEEDBACK = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
CONV = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]


def run_answers(rng: random.Random, n: int) -> Iterator[tuple[str, bool, str]]:
    from icrm.prompt import PromptBuilder

    examples: dict[str, Any] = {}
    for case in answers(rng, n):
        examples.setdefault(case.rm_type.name, PromptBuilder.load(case.rm_type).answer_examples)
        start = time.perf_counter()
        feedback = case.rm_type.build(case.data, None, None, examples[case.rm_type.name],
                                      finish_reason=case.finish_reason)
        seconds = time.perf_counter() - start
        got = case.rm_type.verdict(feedback)
        clean = got == case.expect and seconds < 1.0 and feedback.raw_text == case.data
        yield case.cls, clean, f"{case.name}: {got!r} (expected {case.expect!r}), {seconds:.2f} s"


def run_server_bodies(rng: random.Random, n: int) -> Iterator[tuple[str, bool, str]]:
    from icrm import ICRM
    from icrm.mock import MockServer

    for case in [*answer_bodies(rng, n // 2), *logprob_bodies(rng, n - n // 2)]:
        logprob = case.cls == "server.logprobs"
        with MockServer({"matches": [{"body": case.data}]}) as base_url, \
                ICRM(engine="mock", base_url=base_url, num_shots=0, max_retries=0, completion=False,
                     rm_type="pairwise" if logprob else "individual", method="logprob" if logprob else "critique") as icrm:
            item = {"conversation_A": CONV, "conversation_B": CONV} if logprob else {"conversation": CONV}
            feedback = icrm.judge_item(item)
        verdict = icrm.rm_type.verdict(feedback)
        if case.expect == "any":
            clean = feedback.error_kind != "internal"
        else:
            clean = verdict == case.expect and feedback.error_kind != "internal"
        yield case.cls, clean, f"{case.name}: {verdict!r}, {feedback.error_kind}"


def run_inputs(rng: random.Random, n: int, workdir: Path) -> Iterator[tuple[str, bool, str]]:
    from icrm import ICRM
    from icrm.mock import MockServer

    with MockServer({"matches": [{"response": FEEDBACK}]}) as base_url, \
            ICRM(engine="mock", base_url=base_url, num_shots=0, max_retries=0) as icrm:
        for index, case in enumerate(input_lines(rng, n)):
            source, out = workdir / f"in{index}.jsonl", workdir / f"out{index}.jsonl"
            good = [json.dumps({"id": f"g{i}", "conversation": CONV}).encode() for i in range(2)]
            source.write_bytes(good[0] + b"\n" + case.data + b"\n" + good[1] + b"\n")
            try:
                icrm.score(source, out, progress=False)
                rows = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
                bad_id = "line:2" if case.expect == "line" else case.expect
                clean = rows["g0"]["score"] == rows["g1"]["score"] == 7 and bad_id in rows and len(rows) == 3 \
                    and all(r["error_kind"] != "internal" for r in rows.values())
                detail = f"{case.name}: rows {sorted(rows)}"
            except Exception as error:  # a run that stopped is the defect this class looks for
                clean, detail = False, f"{case.name}: {type(error).__name__}: {error}"
            yield case.cls, clean, detail


def run_timeouts(rng: random.Random, n: int) -> Iterator[tuple[str, bool, str]]:
    from icrm import ICRM

    for index in range(n):
        mode = MODES[index % len(MODES)]
        timeout = rng.choice([1.0, 1.5])
        with HostileServer(mode, interval_s=rng.choice([0.2, 0.5])) as server, \
                ICRM(engine="mock", base_url=server.base_url, num_shots=0, max_retries=0, timeout=timeout) as icrm:
            start = time.perf_counter()
            feedback = icrm.judge_item({"conversation": CONV})
            seconds = time.perf_counter() - start
        clean = feedback.score is None and feedback.error_kind in ("engine", "engine_unavailable") \
            and seconds < timeout + 1.5
        yield f"timeout.{mode}", clean, f"{feedback.error_kind} after {seconds:.2f} s (timeout {timeout} s)"


def run_refusals(rng: random.Random, n: int) -> Iterator[tuple[str, bool, str]]:
    from icrm.cli import main
    from icrm.mock import MockServer

    example = str(ROOT / "examples" / "test_individual.json")
    words = ["stray", "-x", "-q", "--", "None", "none", "--num_shots"]
    with MockServer({"matches": [{"response": FEEDBACK}]}) as base_url:
        mock = ["--engine", "mock", "--base_url", base_url, "--num_shots", "0"]
        for _ in range(n):
            kind = rng.choice(["stray", "flag_value", "none", "env", "unknown"])
            env: dict[str, str] = {}
            if kind == "stray":
                argv = ["test", example, *mock, rng.choice(["stray", "x.json", "123abc"])]
            elif kind == "flag_value":
                argv = ["test", example, "--model_name", rng.choice(["-x", "-abc", "--num_shots"]), *mock[2:]]
            elif kind == "none":
                argv = ["test", example, *mock, rng.choice(["--use_cache", "--verbose", "--num_shots"]), "None"]
            elif kind == "env":
                argv = ["test", example, *mock]
                env = {rng.choice(["ICRM_LOG", "ICRM_RETRY_WAIT_MAX", "ICRM_RETRY_WAIT_MIN", "ICRM_RETRY_ATTEMPTS"]):
                       rng.choice(["garbage", "inf", "nan", "-1", "0", ""])}
                if env.get("ICRM_LOG") in ("inf", "nan", "-1", "0") or "" in env.values():
                    env = {"ICRM_LOG": "verbose"}
            else:
                argv = [rng.choice(["tset", "scor", "evl"]), example, rng.choice(words)]
            before = len(_requests(base_url))
            code, stderr = _run_main(main, argv, env)
            lines = [line for line in stderr.splitlines() if line.startswith("icrm:")]
            clean = code == 2 and "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("icrm: error:") \
                and len(_requests(base_url)) == before
            yield f"refusal.{kind}", clean, f"{argv[-2:]} {env}: exit {code}, {lines[:1]}"


def _requests(base_url: str) -> list[Any]:
    import httpx

    return httpx.get(base_url.removesuffix("/v1") + "/mock/requests").json()["requests"]


def _run_main(main: Callable[[list[str]], None], argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            try:
                main(argv)
                code = 0
            except SystemExit as exit_:
                code = int(exit_.code or 0)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return code, stderr.getvalue()


def run_secrets(rng: random.Random, n: int) -> Iterator[tuple[str, bool, str]]:
    from icrm import ICRM
    from icrm.mock import MockServer

    key = "sk-" + "".join(rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=rng.randint(32, 64)))
    for case in key_echoes(rng, key, n):
        status = rng.choice([400, 401, 403, 500])
        with MockServer({"matches": [{"status": status, "error": case.data}]}) as base_url, \
                ICRM(engine="openai", model_name="m", base_url=base_url, api_key=key, num_shots=0,
                     max_retries=0) as icrm:
            error = icrm.judge_item({"conversation": CONV}).error or ""
        clean = all(piece not in error for piece in (key, key[:16], key[-16:]))
        yield "secret", clean, f"{case.name} (HTTP {status}): {error[:80]}"


def run_terminal(rng: random.Random, n: int, workdir: Path) -> Iterator[tuple[str, bool, str]]:
    from icrm.report import format_item, load_run, select_items

    controls = {c for c in "".join(CONTROLS) if unicodedata.category(c) in ("Cc", "Cf")} - {"\n", "\t"}
    for index, case in enumerate(terminal_texts(rng, n)):
        out = workdir / f"terminal{index}.jsonl"
        row = {"id": f"t{index}{case.data}", "score": None, "raw_text": case.data, "error": case.data,
               "error_kind": "parse", "feedback": {"note": case.data}, "usage": None,
               "provenance": {"fingerprint": "f", "shot_ids": [case.data]}}
        out.write_text(json.dumps(row) + "\n")
        run = load_run(out)
        text = "\n".join(format_item(run, item) for item in select_items(run))
        raw = sorted({f"U+{ord(c):04X}" for c in text if c in controls})
        yield "terminal", not raw, f"{case.data!r}: raw {raw}"


def run_results(rng: random.Random, n: int, workdir: Path) -> Iterator[tuple[str, bool, str]]:
    from icrm.batch import ResultsFile
    from icrm.errors import ConfigError

    fields = {"model": "m", "num_shots": 0}
    for index in range(n):
        kind = rng.choice(["held", "foreign", "earlier_run"])
        path = workdir / f"results{index}.jsonl"
        if kind == "held":
            with ResultsFile.open(path, fields, "start over"):
                try:
                    ResultsFile.open(path, fields, "start over").close()
                    clean, detail = False, "a second run was let in"
                except ConfigError as error:
                    clean, detail = f"pid {os.getpid()}" in str(error), str(error)[:100]
        else:
            if kind == "foreign":
                content = rng.choice([b"a,b\n1,2\n", b"\x00\x01\x02", b'{"id": 1}\n', b"[]\n", b"hello\n",
                                      json.dumps({"id": "x", "provenance": "no"}).encode() + b"\n"])
            else:
                with ResultsFile.open(path, {**fields, "num_shots": rng.randint(1, 5)}, "start over") as held:
                    held.write({"id": "a", "provenance": held.provenance})
                mine = {"id": "a", "provenance": {**fields, "fingerprint": _fingerprint(fields)}}
                content = path.read_bytes() + json.dumps(mine).encode() + b"\n"
            path.write_bytes(content)
            try:
                ResultsFile.open(path, fields, "start over").close()
                clean, detail = False, "opened"
            except ConfigError as error:
                clean, detail = path.read_bytes() == content, str(error)[:100]
        yield f"results.{kind}", clean, detail


def _fingerprint(fields: dict[str, Any]) -> str:
    from icrm.batch import run_fingerprint

    return run_fingerprint(fields)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0, help="variants per class, times this")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    size = lambda n: max(1, round(n * args.scale))  # noqa: E731
    results: list[tuple[str, bool, str]] = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        batteries = [run_answers(rng, size(120)), run_server_bodies(rng, size(30)), run_inputs(rng, size(21), workdir),
                     run_timeouts(rng, size(9)), run_refusals(rng, size(20)), run_secrets(rng, size(10)),
                     run_terminal(rng, size(12), workdir), run_results(rng, size(12), workdir)]
        for battery in batteries:
            results.extend(battery)
    seconds = time.perf_counter() - start
    tried, clean = Counter(c for c, _, _ in results), Counter(c for c, ok, _ in results if ok)
    print(f"{'class':<24}{'tried':>7}{'clean':>7}{'defects':>9}")
    for cls in sorted(tried):
        print(f"{cls:<24}{tried[cls]:>7}{clean[cls]:>7}{tried[cls] - clean[cls]:>9}")
    total, total_clean = sum(tried.values()), sum(clean.values())
    print(f"{'all':<24}{total:>7}{total_clean:>7}{total - total_clean:>9}   ({seconds:.0f} s, seed {args.seed})")
    for cls, ok, detail in results:
        if not ok:
            print(f"DEFECT {cls}: {detail}")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "seconds": seconds, "tried": total, "clean": total_clean,
                                         "classes": {c: {"tried": tried[c], "clean": clean[c]} for c in tried}},
                                        indent=2))
    sys.exit(0 if total == total_clean else 1)


if __name__ == "__main__":
    main()
