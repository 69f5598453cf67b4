"""Prompt building: templates, shots and the example to judge, rendered into one prompt.

Pure and synchronous: no engine, no I/O after loading. The prompt is the overall
template (instruction, rules, output format) with the shots block and the example, each
shot written with the shot template and its feedback with the feedback template. Text
from conversations and shots is neutralised (`icrm.neutralize`) before it is inserted,
so it can neither change the prompt's structure nor carry a chat control token.

>>> from icrm.rm_types import INDIVIDUAL
>>> builder = PromptBuilder.load(INDIVIDUAL)
>>> shots = builder.pool.sample(1, "fixed", None)
>>> prompt = builder.render([{"role": "user", "content": "Hi <|im_end|>"},
...                          {"role": "assistant", "content": "Hello!"}], shots)
>>> prompt.endswith("<|begin_of_feedback|>\\n"), prompt.count("## Example"), "Hi <¦im_end¦>" in prompt
(True, 1, True)
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .conversation import Conversation
from .errors import ConfigError, InputError
from .methods import JudgingMethod, get_method
from .neutralize import heading_pattern, neutralize
from .parsing import template_examples
from .rm_types import RMType
from .shots import Shot, ShotsPool
from .template import Template, feedback_template_keys, render_feedback

__all__ = ["PromptBuilder", "RENDERED_SHOTS_CACHE_SIZE", "CONTEXT_KEYS"]

RENDERED_SHOTS_CACHE_SIZE = 256  # distinct shot sets kept rendered (random mode makes many)
# Row fields an overall template may use besides the example: a reference answer (the
# default templates' reference-guided variant, MT-Bench style) and a rubric. Jinja
# templates also get every extra field of the row as ``row``.
CONTEXT_KEYS = ("reference", "rubric")
_JINJA_CONTEXT = (*CONTEXT_KEYS, "row")


class PromptBuilder:
    """Everything a prompt is made of, for one rm type and judging method.

    Build it with `PromptBuilder.load`. `render` is pure: the same conversations and
    shots give the same prompt.

    Attributes:
        rm_type: the rm type judged.
        method: the judging method (what the shots show).
        template, shot_template, feedback_template: the three templates.
        reference_template: the default overall template's reference-guided variant,
            used for items with a ``reference`` (None with a custom template, which
            uses ``{$reference}`` itself if it wants it).
        pool: the shots pool.
        template_hash: 12 hex digits of the SHA-256 of the templates' text.
        answer_examples: the format examples the overall templates show (objects with
            the verdict key), decoded: an answer that repeats one is never a verdict.
    """

    def __init__(self, rm_type: RMType, method: JudgingMethod, template: Template, shot_template: Template,
                 feedback_template: Template, pool: ShotsPool, reference_template: Template | None = None) -> None:
        self.rm_type, self.method, self.pool = rm_type, method, pool
        self.template, self.shot_template, self.feedback_template = template, shot_template, feedback_template
        self.reference_template = reference_template
        texts = [t.text for t in (template, shot_template, feedback_template, reference_template) if t is not None]
        self.template_hash = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:12]
        # Inserted text may not repeat a section heading of these templates.
        self._headings = heading_pattern(t.text for t in (template, shot_template))
        self.answer_examples = template_examples(
            (t.text for t in (template, reference_template) if t is not None), rm_type.verdict_key)
        self._rendered_shots: dict[tuple[int, ...], str] = {}

    @classmethod
    def load(cls, rm_type: RMType, method: str | JudgingMethod = "critique", template_path: str | Path | None = None,
             shot_template_path: str | Path | None = None, feedback_template_path: str | Path | None = None,
             shots_pool_path: str | Path | None = None) -> PromptBuilder:
        """Load and check the templates (the method's defaults where no path is given)
        and the shots pool.

        Raises:
            ConfigError: an unreadable template or pool, a template missing a key it
                must use or using one icrm does not supply, an invalid shot.
        """
        method = get_method(method)
        overall, shot, feedback = method.default_templates(rm_type)
        template = rm_type.specialise(_template(template_path, overall, rm_type.template_keys("overall"), CONTEXT_KEYS),
                                      method)
        reference = rm_type.specialise(Template.default(overall, reference=True), method) if template_path is None \
            else None
        shot_template = _template(shot_template_path, shot, rm_type.template_keys("shot"))
        if feedback_template_path is None:
            feedback_template = Template.default(feedback)
        else:
            feedback_template = Template.load(feedback_template_path, None)  # its keys depend on its syntax
            feedback_template.check_keys(feedback_template_keys(feedback_template, method.answer_keys(rm_type)))
        return cls(rm_type, method, template, shot_template, feedback_template, ShotsPool.load(shots_pool_path, rm_type),
                   reference)

    def sample(self, num_shots: int, mode: str, rng: random.Random | None) -> list[Shot]:
        """`num_shots` shots from the pool (``fixed`` or ``random`` from `rng`).

        Raises:
            ConfigError: unknown mode, or more shots than the pool holds.
        """
        return self.pool.sample(num_shots, mode, rng or random.Random(0))

    def shots(self, records: Sequence[Mapping[str, Any] | Shot]) -> list[Shot]:
        """Validate caller-given shots (dicts or `Shot` objects).

        Raises:
            ConfigError: an invalid shot, naming its index and field.
        """
        return ShotsPool.from_records(records, self.rm_type, "shots argument").shots

    def render(self, fields: Sequence[Any] | Mapping[str, Any] | Conversation | Sequence[Conversation],
               shots: Sequence[Shot], context: Mapping[str, Any] | None = None) -> str:
        """The prompt for one judgement.

        Args:
            fields: the item's conversations: a mapping of the rm type's input fields,
                validated `Conversation` objects, or (individual) one message list.
            shots: the shots to show, in order (pool shots render once and are reused).
            context: the item's other fields (``reference``, ``rubric``, metadata), for
                templates that use them; a ``reference`` selects the default template's
                reference-guided variant.

        Returns:
            The prompt text, ending where the judge's answer begins.

        Raises:
            InputError: an invalid conversation (naming the turn), or a template using
                a context field the item lacks.
            ConfigError: a template that fails to render.
        """
        conversations = self._conversations(fields)
        context = dict(context or {})
        template = self.template
        if context.get("reference") is not None and self.reference_template is not None:
            template = self.reference_template
        values = {**self.rm_type.example_values(conversations, self._clean), **self._context_values(template, context)}
        return template.render({"shots": self._shots_block(shots), **values})

    def _context_values(self, template: Template, context: Mapping[str, Any]) -> dict[str, Any]:
        wanted = template.keys & set(_JINJA_CONTEXT if template.jinja else CONTEXT_KEYS)
        missing = sorted(k for k in wanted - {"row"} if context.get(k) is None)
        if missing:
            raise InputError(f"the template uses {', '.join(missing)}, which this item lacks: give the item "
                             f"{' and '.join(repr(k) for k in missing)} fields")
        values: dict[str, Any] = self._neutralized({k: _text(context[k]) for k in wanted - {"row"}})
        if "row" in wanted:
            values["row"] = self._neutralized({k: _text(v) for k, v in context.items()})
        return values

    def _conversations(self, fields: Any) -> tuple[Conversation, ...]:
        if isinstance(fields, Conversation):
            return (fields,)
        if isinstance(fields, Mapping):
            return self.rm_type.conversations(fields)
        if isinstance(fields, Sequence) and fields and all(isinstance(c, Conversation) for c in fields):
            return tuple(fields)
        return self.rm_type.conversations({self.rm_type.input_fields[0]: fields})

    def _shots_block(self, shots: Sequence[Shot]) -> str:
        # Pool shots live as long as the pool, so their identities key the rendered
        # block: with fixed shots it is rendered once, not per item.
        key = tuple(id(s) for s in shots)
        block = self._rendered_shots.get(key)
        if block is None:
            if len(self._rendered_shots) >= RENDERED_SHOTS_CACHE_SIZE:
                self._rendered_shots.clear()
            block = self._rendered_shots[key] = "\n\n".join(self._render_shot(i, s) for i, s in enumerate(shots, 1))
        return block

    def shot_text(self, shot: Shot) -> str:
        """One shot as the prompt shows it (numbered 1), e.g. to count its tokens."""
        return self._render_shot(1, shot)

    def _render_shot(self, index: int, shot: Shot) -> str:
        feedback = self.method.shot_feedback(self.rm_type, shot.feedback)
        values = self.rm_type.example_values(shot.conversations, self._clean)
        written = render_feedback(self.feedback_template, self._neutralized(feedback))
        return self.shot_template.render({"index": index, **values, "feedback": written})

    def _clean(self, text: str) -> str:
        return neutralize(text, self._headings)

    def _neutralized(self, values: Mapping[str, Any]) -> dict[str, Any]:
        # Keys too: a Jinja template may show a row's keys (``{% for k, v in row.items() %}``).
        return {(neutralize(k, self._headings) if isinstance(k, str) else k):
                (neutralize(v, self._headings) if isinstance(v, str) else v) for k, v in values.items()}


def _template(path: str | Path | None, default: str, required: Sequence[str],
              optional: Sequence[str] = ()) -> Template:
    if path is None:
        return Template.default(default)
    if not str(path).strip():
        raise ConfigError("a template path is empty: give a file, or leave the option unset for the default")
    template = Template.load(path, None)
    template.check_keys(required, _JINJA_CONTEXT if template.jinja else optional)
    return template


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
