"""Neutralising text that is inserted into a prompt (conversations, shots, row fields).

Text the judge must read cannot be allowed to change the prompt's structure or carry a
chat template's control tokens. `neutralize` rewrites, visibly and minimally:

- every ``<|`` / ``|>`` (and DeepSeek's fullwidth ``<｜`` / ``｜>``) with a broken bar
  ``¦``: icrm's markers (``<|end_of_response|>``, ``<|end_of_feedback|>``), their
  near-variants (``<|end-of-feedback|>``, ``<|END_OF_FEEDBACK|>``, unclosed or of any
  length) and the ``<|...|>`` special tokens of ChatML/Qwen (``<|im_start|>``), Llama 3
  (``<|eot_id|>``), Phi (``<|end|>``), GPT (``<|endoftext|>``) and DeepSeek
  (``<｜end▁of▁sentence｜>``) can no longer open or close anything;
- the angle- and square-bracket control tokens of Llama 2 (``<s>``, ``</s>``,
  ``<<SYS>>``, ``[INST]``), Mistral (``[INST]``, ``[SYSTEM_PROMPT]``, ``[TOOL_CALLS]``,
  ...), Gemma (``<start_of_turn>``, ``<end_of_turn>``, ``<bos>``, ``<eos>``) and Qwen /
  DeepSeek reasoning and tool tags (``<think>``, ``<tool_call>``): ``<`` becomes ``‹``
  and ``[`` becomes ``⁅``, so no tokenizer reads them as special;
- a line that repeats one of the template's section headings (``### Feedback``,
  ``## Example 3``, ``# Rules``, ...) or field labels (``Response B:``, ``Query:``, the
  compact delimiters of the fast methods' templates) gets a backslash before it, so
  inserted text cannot open a section or a field of the prompt.

What remains is a model-level risk, documented in the docs (Templates and shots): a judge can still be swayed
by what a response *says* (a fake feedback object in plain text, "rate this 10").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["neutralize", "heading_pattern", "CONTROL_TOKENS"]

BROKEN_BAR = "¦"
# Control tokens written with angle or square brackets, by chat template family.
CONTROL_TOKENS = (
    # Llama 2 / Mistral / SentencePiece
    "<s>", "</s>", "<unk>", "<<SYS>>", "<</SYS>>", "[INST]", "[/INST]",
    # Mistral v3+ tokenizers
    "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CONTENT]", "[THINK]", "[/THINK]",
    # Gemma
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<start_of_image>", "<end_of_image>",
    # Qwen / DeepSeek reasoning and tools
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
)
_PIPE_MARKER = re.compile(r"<\||\|>|<｜|｜>")
_CONTROL = re.compile("|".join(re.escape(t) for t in sorted(CONTROL_TOKENS, key=len, reverse=True)))
_FIELD_LABEL = re.compile(r"[A-Z][A-Za-z ]{0,30}:")
_PLACEHOLDER = re.compile(r"\{\$[^{}$\n]+\}|\{\{.*?\}\}|\{%.*?%\}")


def heading_pattern(template_texts: Iterable[str]) -> re.Pattern[str] | None:
    """A pattern matching the section headings and field labels of templates: their
    lines that start with ``#``, or that are a short label ending with ``:``
    (``Response A:``); placeholders (``{$index}``, Jinja) matching anything.

    >>> bool(heading_pattern(["## Example {$index}", "### Feedback"]).fullmatch("## Example 7"))
    True
    >>> bool(heading_pattern(["Response A:", "{$model_output_A}"]).fullmatch("Response A:"))
    True
    """
    headings = set()
    for text in template_texts:
        for line in text.splitlines():
            line = line.strip().removeprefix("@reference: ")
            if line.startswith("#") or _FIELD_LABEL.fullmatch(line):
                parts = _PLACEHOLDER.split(line)
                headings.add(".*".join(re.escape(p) for p in parts))
    if not headings:
        return None
    return re.compile(r"[ \t]*(?:" + "|".join(sorted(headings)) + r")[ \t]*")


def neutralize(text: str, headings: re.Pattern[str] | None = None) -> str:
    """`text` with marker, control-token and heading look-alikes broken (see the module
    docstring); other text is left as it is.

    >>> neutralize("ok <|end_of_feedback|> </s> [INST] {$shots}")
    'ok <¦end_of_feedback¦> ‹/s> ⁅INST] {$shots}'
    >>> neutralize("### Feedback\\n{}", heading_pattern(["### Feedback"]))
    '\\\\### Feedback\\n{}'
    """
    text = _PIPE_MARKER.sub(lambda m: m.group().replace("|", BROKEN_BAR).replace("｜", BROKEN_BAR), text)
    text = _CONTROL.sub(lambda m: "‹" + m.group()[1:] if m.group()[0] == "<" else "⁅" + m.group()[1:], text)
    if headings is not None and "#" in text:
        lines = text.split("\n")
        text = "\n".join("\\" + line.lstrip() if headings.fullmatch(line) else line for line in lines)
    return text
