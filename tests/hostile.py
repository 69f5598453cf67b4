"""Hostile variants for the trust tests and ``benchmarks/faults.py``: what a hostile judge
answers, a broken server sends, or a careless user feeds icrm — generated per defect
class at random positions, sizes and encodings from a seeded generator, so the same
seed gives the same battery and a new seed a new one.

Each generator returns `Case` objects: the class, a name for the variant, the data and
what a clean outcome is (a verdict, or None: no verdict).
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from icrm.prompt import PromptBuilder
from icrm.rm_types import INDIVIDUAL, PAIRWISE, RMType

__all__ = ["Case", "answers", "logprob_bodies", "answer_bodies", "input_lines", "terminal_texts", "key_echoes",
           "MARKERS", "HEADINGS", "CONTROLS"]

# Where a model that runs on starts another block: chat and template markers, headings.
MARKERS = ["<|end_of_feedback|>", "<|im_end|>", "<|eot_id|>", "<|end|>", "<｜end▁of▁sentence｜>",
           "<|begin_of_feedback|>", "<|endoftext|>"]
HEADINGS = ["## Example 1", "### Feedback", "# Example to judge", "#### Answer", "## Example 17", "# Output Format",
            "### Score", "  ## Example 2"]
CONTROLS = ["\x1b[2J\x1b[H", "\x1b]52;c;ZXZpbA==\x07", "\x07", "\x1b[31m", "\r", "\x1b]0;title\x07", "\u009b2J",
            "\u202e", "\x08\x08", "\x1bP1$r\x1b\\"]


@dataclass(frozen=True)
class Case:
    """One hostile variant.

    Attributes:
        cls: its defect class (``parse.echo``, ``input.deep``, ...).
        name: what this variant is, for reports.
        data: the input, answer or body.
        expect: the clean outcome: a verdict, or None (no verdict may come of it).
        rm_type: the rm type it is judged as.
        finish_reason: the server's finish reason to report with an answer.
    """

    cls: str
    name: str
    data: Any
    expect: Any = None
    rm_type: RMType = INDIVIDUAL
    finish_reason: str | None = "stop"


def _texts(rng: random.Random, rm_type: RMType) -> dict[str, str]:
    words = ["clear", "wrong", "brief", "polite", "misses the point", "answers fully", "cites no source"]
    return {k: " ".join(rng.choices(words, k=rng.randint(1, 6))) for k in rm_type.keys() if k != rm_type.verdict_key}


def _feedback(rng: random.Random, rm_type: RMType, verdict: Any) -> str:
    obj = {**_texts(rng, rm_type), rm_type.verdict_key: verdict}
    indent = rng.choice([None, 2, 4])
    return json.dumps(obj, indent=indent, ensure_ascii=rng.random() < 0.5)


def _other(rng: random.Random, rm_type: RMType, verdict: Any) -> Any:
    return rng.choice([v for v in rm_type.verdicts if v != verdict])


def _gap(rng: random.Random) -> str:
    return rng.choice(["\n", "\n\n", " ", "\n\nNow my own feedback:\n", "\nOn reflection:\n\n", ""])


def _separator(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.45:
        return _gap(rng) + rng.choice(MARKERS) + _gap(rng)
    return "\n" + rng.choice(HEADINGS) + "\n" + rng.choice(["", "<|begin_of_feedback|>\n"])


def answers(rng: random.Random, n: int) -> list[Case]:
    """`n` hostile judge answers (and clean controls), for the parser.

    Classes: ``parse.echo`` (the prompt's format example, then the real feedback across
    a marker or heading, either order), ``parse.shot`` (a shot's feedback echoed, then the
    real one), ``parse.placeholder`` (the template's placeholder object alone),
    ``parse.duplicate`` (the verdict key twice in one object), ``parse.junk`` (a
    repaired verdict: ``7 8``), ``parse.cut`` (cut open), ``parse.bounded`` (40k ``{``,
    50k ``[``, megabytes of junk), ``parse.clean`` (a real answer: its verdict).
    """
    examples = {t.name: PromptBuilder.load(t).answer_examples[0] for t in (INDIVIDUAL, PAIRWISE)}
    pools = {t.name: PromptBuilder.load(t).pool.shots for t in (INDIVIDUAL, PAIRWISE)}
    out: list[Case] = []
    makers: list[Callable[[], Case]] = []

    def pick() -> tuple[RMType, Any, str]:
        rm_type = rng.choice([INDIVIDUAL, PAIRWISE])
        verdict = rng.choice(rm_type.verdicts)
        return rm_type, verdict, _feedback(rng, rm_type, verdict)

    def echo() -> Case:
        rm_type, verdict, real = pick()
        example = json.dumps(examples[rm_type.name], indent=rng.choice([None, 4]))
        first, second = (example, real) if rng.random() < 0.6 else (real, example)
        return Case("parse.echo", "format example, marker, feedback", first + _separator(rng) + second,
                    rm_type=rm_type)

    def shot() -> Case:
        rm_type, verdict, real = pick()
        echoed = json.dumps(rng.choice(pools[rm_type.name]).feedback, indent=rng.choice([None, 4]))
        first, second = (echoed, real) if rng.random() < 0.5 else (real, echoed)
        return Case("parse.shot", "a shot's feedback and the answer across a marker", first + _separator(rng) + second,
                    rm_type=rm_type)

    def placeholder() -> Case:
        rm_type = rng.choice([INDIVIDUAL, PAIRWISE])
        text = _gap(rng) + json.dumps(examples[rm_type.name], indent=rng.choice([None, 2, 4])) + _gap(rng)
        return Case("parse.placeholder", "the template's example alone", text, rm_type=rm_type)

    def duplicate() -> Case:
        rm_type, verdict, _ = pick()
        texts = _texts(rng, rm_type)
        key = json.dumps(rm_type.verdict_key)
        values = [json.dumps(verdict), json.dumps(_other(rng, rm_type, verdict))]
        rng.shuffle(values)
        body = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in texts.items()]
        for value in values:
            body.insert(rng.randint(0, len(body)), f"{key}: {value}")
        return Case("parse.duplicate", "the verdict key twice", "{" + ", ".join(body) + "}", rm_type=rm_type)

    def junk() -> Case:
        rm_type, verdict, _ = pick()
        texts = _texts(rng, rm_type)
        tail = rng.choice([" 8", " B", "/10 x", " and 9", ")", " !"])
        value = (str(verdict) if isinstance(verdict, int) else json.dumps(verdict)) + tail
        body = ", ".join([*(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in texts.items()),
                          f"{json.dumps(rm_type.verdict_key)}: {value}"])
        return Case("parse.junk", f"a verdict followed by {tail!r}", "{" + body + "}", rm_type=rm_type)

    def cut() -> Case:
        rm_type, verdict, real = pick()
        at = rng.randint(1, len(real) - 1)
        return Case("parse.cut", "an answer cut open", real[:at], rm_type=rm_type,
                    finish_reason=rng.choice(["length", "stop", None]))

    def bounded() -> Case:
        rm_type = rng.choice([INDIVIDUAL, PAIRWISE])
        size = rng.choice([40_000, 50_000, 200_000, 2_000_000])
        kind = rng.choice(["braces", "brackets", "nested", "junk", "objects", "strings"])
        text = {"braces": "{" * size, "brackets": '{"a": ' + "[" * size,
                "nested": '{"a": ' + "[" * (size // 2) + "]" * (size // 2) + "}",
                "junk": "".join(rng.choices(string.printable + "{}[]\"\\", k=size)),
                "objects": '{"score": 5}' * (size // 12), "strings": '{"a": "' + "\\\"" * (size // 2)}[kind]
        return Case("parse.bounded", f"{kind} x{size:,}", text, rm_type=rm_type)

    def clean() -> Case:
        rm_type, verdict, real = pick()
        prose = rng.choice(["", "Here is my feedback:\n", "```json\n", "Sure.\n\n"])
        end = rng.choice(["", "\n```", "\n", "<|end_of_feedback|>", "\n<|end_of_feedback|>\n## Example 4\n"])
        return Case("parse.clean", "a real answer", prose + real + end, verdict, rm_type=rm_type)

    makers = [echo, shot, placeholder, duplicate, junk, cut, bounded, clean]
    for i in range(n):
        out.append(makers[i % len(makers)]())
    return out


def answer_bodies(rng: random.Random, n: int) -> list[Case]:
    """`n` chat-completion bodies a broken server may send for one judgement (data: the
    body as JSON text; expect: the verdict when the answer is good, else None).

    Classes: ``server.usage`` (usage counts that are strings, NaN, negative, missing —
    the verdict stands), ``server.choices`` (fewer or more choices than asked, text that
    is not text), ``server.surrogate`` (a lone surrogate in the answer — a row, not a
    crash).
    """
    good = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
    out = []
    for i in range(n):
        kind = ["usage", "choices", "surrogate"][i % 3]
        choice = {"index": 0, "message": {"role": "assistant", "content": good}, "finish_reason": "stop"}
        body: dict[str, Any] = {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": [choice]}
        expect: Any = 7
        if kind == "usage":
            bad = rng.choice(["12", "NaN", -5, 1.5, None, [], {"n": 1}, 1e30, True])
            body["usage"] = {"prompt_tokens": bad, "completion_tokens": rng.choice([3, bad]), "total_tokens": bad,
                             "prompt_tokens_details": {"cached_tokens": rng.choice([bad, 2])}}
            name = f"usage {bad!r}"
        elif kind == "choices":
            count = rng.choice([0, 2, 3, 5])
            body["choices"] = [{**choice, "index": j} for j in range(count)]
            if count and rng.random() < 0.4:
                body["choices"][0]["message"]["content"] = rng.choice([[1, 2], 42, {"a": 1}])
            expect, name = None, f"{count} choices for n=1"
        else:
            text = good[:rng.randint(1, 20)] + "\\ud800" + good[20:] if rng.random() < 0.5 else good + " \\udfff"
            body_text = json.dumps(body).replace(json.dumps(good)[1:-1], text)
            out.append(Case("server.surrogate", "a lone surrogate in the answer", body_text, "any"))
            continue
        out.append(Case(f"server.{kind}", name, json.dumps(body), expect))
    return out


def logprob_bodies(rng: random.Random, n: int) -> list[Case]:
    """`n` chat-completion bodies whose logprobs are broken (class ``server.logprobs``):
    values huge, positive, NaN or text, entries missing ``token``, a shape that is not
    logprobs, 200,000 entries. None of them may become a verdict by accident (expect
    None), an ``internal`` error or a traceback; a huge negative logprob is a real one
    (expect ``any``)."""
    out = []
    for _ in range(n):
        kind = rng.choice(["positive", "nan", "text", "no_token", "shape", "huge_value", "many", "inf"])
        top = [{"token": str(d), "logprob": -float(d) - 0.1} for d in range(1, 6)]
        if kind == "positive":
            top[0]["logprob"] = rng.choice([5.0, 1e300, 0.5])
        elif kind == "nan":
            top[rng.randrange(5)]["logprob"] = "NaN"
        elif kind == "text":
            top[rng.randrange(5)]["logprob"] = rng.choice(["high", "-0.5e", ""])
        elif kind == "no_token":
            del top[rng.randrange(5)]["token"]
        elif kind == "huge_value":
            top[0]["logprob"] = -1e308
        elif kind == "inf":
            top[0]["logprob"] = rng.choice(["Infinity", "-Infinity"])
        elif kind == "many":
            top = [{"token": f"t{j}", "logprob": -20.0} for j in range(200_000)] + top
        logprobs: Any = {"content": [{"token": "1", "logprob": -0.1, "top_logprobs": top}]}
        if kind == "shape":
            logprobs = rng.choice(["abc", [1, 2], {"content": "x"}, {"content": [5]}, {"content": [{"top_logprobs": 3}]}])
        body = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "1"}, "finish_reason": "stop",
                             "logprobs": logprobs}], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}
        text = json.dumps(body).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity").replace('"-Infinity"',
                                                                                                    "-Infinity")
        # A logprob of -1e308 is a real one (a probability of 0): any outcome but an internal error.
        out.append(Case("server.logprobs", kind, text, "any" if kind == "huge_value" else None, rm_type=PAIRWISE))
    return out


def input_lines(rng: random.Random, n: int) -> list[Case]:
    """`n` JSONL input lines (bytes) that icrm cannot judge or must keep apart (classes
    ``input.*``), each with the id its row must have (expect). Every other line of the
    same file is still judged."""
    def conv(q: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": q}, {"role": "assistant", "content": "a"}]

    out = []
    for i in range(n):
        kind = ["surrogate_id", "surrogate_text", "deep", "bad_utf8", "reserved", "not_object", "torn"][i % 7]
        if kind == "surrogate_id":
            rid = f"id{i}\\ud800"
            line = ('{"id": "' + rid + '", "conversation": ' + json.dumps(conv("q")) + "}").encode()
            out.append(Case("input.surrogate", "a lone surrogate in the id", line, f"id{i}\ud800"))
        elif kind == "surrogate_text":
            line = ('{"id": "s' + str(i) + '", "conversation": [{"role": "user", "content": "q\\udc00"}, '
                    '{"role": "assistant", "content": "a"}]}').encode()
            out.append(Case("input.surrogate", "a lone surrogate in the text", line, f"s{i}"))
        elif kind == "deep":
            depth = rng.choice([5_000, 100_000])
            line = ('{"id": "d' + str(i) + '", "x": ' + "[" * depth + "]" * depth + "}").encode()
            out.append(Case("input.deep", f"nested {depth:,} deep", line, "line"))
        elif kind == "bad_utf8":
            raw = json.dumps({"id": f"u{i}", "conversation": conv("q")}).encode()
            at = rng.randint(1, len(raw) - 2)
            out.append(Case("input.utf8", "bytes that are not UTF-8", raw[:at] + rng.choice([b"\xff", b"\xc3(", b"\x80"])
                            + raw[at:], "line"))
        elif kind == "reserved":
            rid = rng.choice(["line:3", "x@line:2", "line:0123456789abcdef", "y@dup:4"])
            line = json.dumps({"id": rid, "conversation": conv("q")}).encode()
            out.append(Case("input.reserved", f"a user id of icrm's form {rid!r}", line, "line"))
        elif kind == "not_object":
            out.append(Case("input.shape", "not an object", rng.choice([b"[1, 2]", b"42", b'"text"', b"null"]), "line"))
        else:
            line = json.dumps({"id": f"t{i}", "conversation": conv("q")}).encode()
            out.append(Case("input.torn", "a torn line", line[:rng.randint(2, len(line) - 2)], "line"))
    return out


def terminal_texts(rng: random.Random, n: int) -> list[Case]:
    """`n` texts carrying terminal controls (class ``terminal``), for ids, conversations
    and answers shown by ``icrm show``: none may reach the terminal raw."""
    return [Case("terminal", "controls", "before " + "".join(rng.choices(CONTROLS, k=rng.randint(1, 3))) + " after")
            for _ in range(n)]


def key_echoes(rng: random.Random, key: str, n: int) -> list[Case]:
    """`n` server error messages that echo the provider `key` (class ``secret``): whole,
    in JSON, cut, partly masked."""
    out = []
    for _ in range(n):
        kind = rng.choice(["whole", "json", "prefix", "masked", "suffix"])
        shown = {"whole": key, "json": json.dumps({"key": key}), "prefix": key[:rng.randint(20, len(key))],
                 "masked": key[:18] + "****" + key[-4:], "suffix": key[-rng.randint(17, len(key) - 1):]}[kind]
        out.append(Case("secret", kind, f"Incorrect API key provided: {shown}. You can find your key at ...", None))
    return out
