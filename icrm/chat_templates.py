"""Chat-templated text back into turns.

RL trainers hand a reward server the policy's prompt as its chat template rendered it
(OpenRLHF's ``query`` is that prompt plus the response). Judged as one user message, the
judge would see the template's special tokens and the whole history as one question. This
module recognises the common templates and splits such text into ``system`` / ``user`` /
``assistant`` turns: ChatML (Qwen, SmolLM, Yi, ...), Llama 3, Mistral (v1/v3/v7 ``[INST]``
with ``[SYSTEM_PROMPT]``), Gemma, and DeepSeek V3 / R1. Their markers are those the
models' own templates write (as rendered by llama.cpp's ``llama_chat_apply_template`` and
by 🤗 tokenizers, whose rendering adds the BOS text: ``<|begin_of_text|>``, ``<bos>``,
``<s>``, ``<｜begin▁of▁sentence｜>``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TEMPLATES", "detect", "split_templated"]

Turns = list[dict[str, str]]
BOS = ("<|begin_of_text|>", "<bos>", "<s>", "<｜begin▁of▁sentence｜>", "<|startoftext|>")
# Tokens that may close the response: the template's end of turn, then the model's EOS.
END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "<eos>", "</s>",
              "<｜end▁of▁sentence｜>", "<|endoftext|>", "<|end|>")


@dataclass(frozen=True)
class Template:
    """One chat template family: how to recognise it and parse its turns.

    Attributes:
        name: the family's name.
        marker: a string only this family's rendering contains.
        parse: rendered text (without BOS) -> turns; the last may be an open assistant
            turn (empty content) when the text ends with the assistant header.
        separator: what the template writes between the assistant header and the
            response (Mistral: a space), not part of the response.
    """

    name: str
    marker: str
    parse: Callable[[str], Turns | None]
    separator: str = ""


def _headers(pattern: str, roles: dict[str, str]) -> Callable[[str], Turns | None]:
    """A parser for templates that open each turn with a header naming its role and
    close it with an end token: `pattern` matches a header (group ``role``)."""
    header = re.compile(pattern)

    def parse(text: str) -> Turns | None:
        starts = list(header.finditer(text))
        if not starts or text[:starts[0].start()].strip():
            return None
        turns = []
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            role = roles.get(match.group("role"))
            if role is None:
                return None
            turns.append({"role": role, "content": _strip_end(text[match.end():end])})
        return turns

    return parse


def _mistral(text: str) -> Turns | None:
    turns: Turns = []
    system = re.match(r"\s*\[SYSTEM_PROMPT\](.*?)\[/SYSTEM_PROMPT\]", text, re.S)
    if system:
        turns.append({"role": "system", "content": system.group(1).strip()})
        text = text[system.end():]
    parts = re.split(r"\s*\[INST\]\s?|\s?\[/INST\]", text)
    # parts: [before the first [INST], user, assistant, user, assistant, ...]
    if parts[0].strip() or len(parts) < 3:
        return None
    for i, part in enumerate(parts[1:]):
        role = "user" if i % 2 == 0 else "assistant"
        turns.append({"role": role, "content": _strip_end(part).strip() if role == "user" else _strip_end(part.lstrip())})
    return turns


def _deepseek(text: str) -> Turns | None:
    parts = re.split(r"(<｜User｜>|<｜Assistant｜>)", text)
    turns: Turns = [{"role": "system", "content": parts[0].strip()}] if parts[0].strip() else []
    for marker, content in zip(parts[1::2], parts[2::2]):
        turns.append({"role": "user" if marker == "<｜User｜>" else "assistant", "content": _strip_end(content)})
    return turns or None


TEMPLATES = (
    Template("chatml", "<|im_start|>", _headers(r"<\|im_start\|>(?P<role>\w+)\n",
                                                 {"system": "system", "user": "user", "assistant": "assistant"})),
    Template("llama3", "<|start_header_id|>", _headers(r"<\|start_header_id\|>(?P<role>\w+)<\|end_header_id\|>\n\n",
                                                        {"system": "system", "user": "user", "assistant": "assistant"})),
    Template("gemma", "<start_of_turn>", _headers(r"<start_of_turn>(?P<role>\w+)\n",
                                                   {"system": "system", "user": "user", "model": "assistant"})),
    Template("mistral", "[/INST]", _mistral, separator=" "),
    Template("deepseek", "<｜Assistant｜>", _deepseek),
)


def detect(text: str) -> Template | None:
    """The template family `text` was rendered with, or None for plain text."""
    return next((t for t in TEMPLATES if t.marker in text), None)


def split_templated(prompt: str, query: str) -> Turns | None:
    """The conversation of a chat-templated `prompt` and the `query` that extends it with
    the response (OpenRLHF's ``query``), as turns ending with the assistant response;
    None when the prompt is not in a known template (the caller keeps it as plain text).

    The response is `query` past `prompt` (or, when `query` does not start with it, the
    last assistant turn of `query` parsed whole), without the closing end-of-turn and EOS
    tokens. A history in the prompt becomes earlier turns; a system prompt a template
    folds into the first user turn (Gemma, Mistral v3) stays there.

    >>> split_templated("<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\n",
    ...                 "<|im_start|>user\\nHi<|im_end|>\\n<|im_start|>assistant\\nHello!<|im_end|>")
    [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello!'}]
    """
    template = detect(prompt)
    if template is None:
        return None
    turns = template.parse(_strip_bos(prompt))
    if not turns:
        return None
    opened = ""
    if turns[-1]["role"] == "assistant":  # the open assistant turn the response continues
        opened, turns = turns[-1]["content"], turns[:-1]  # (e.g. DeepSeek R1's "<think>\n")
    if query.startswith(prompt):
        response = opened + _strip_end(query[len(prompt):].removeprefix(template.separator))
    else:
        whole = template.parse(_strip_bos(query)) or []
        if not whole or whole[-1]["role"] != "assistant":
            return None
        response = whole[-1]["content"]
    return [*turns, {"role": "assistant", "content": response}]


def _strip_bos(text: str) -> str:
    for bos in BOS:
        if text.startswith(bos):
            return text[len(bos):]
    return text


def _strip_end(text: str) -> str:
    """`text` without trailing end-of-turn / EOS tokens and the newline a template puts
    after them."""
    changed = True
    while changed:
        changed = False
        stripped = text.rstrip("\n")
        for token in END_TOKENS:
            if stripped.endswith(token):
                text, changed = stripped[: -len(token)], True
                break
    return text
