"""Prompt templates: ``{$key}`` placeholders substituted in one pass, or Jinja2 (``.j2``).

Three templates make a prompt: the *overall* template (instruction, rules, output format,
``{$shots}``, then the example to judge), the *shot* template (one scored example), and
the *feedback* template (how a shot's feedback is written out).

Substitution is one pass over the template, so a conversation that contains
``{$model_output}`` is inserted as text and never substituted again. Inserted text is
neutralised by the caller (`icrm.neutralize`), so user content cannot close a block,
end the feedback, open a section or inject a special token. Jinja2 templates render in
a sandbox with no loader: ``{% include %}``, ``{% import %}`` and ``{% extends %}`` are
refused when the template is loaded, and any failure while rendering is a
`ConfigError`, never a traceback.
"""

from __future__ import annotations

import importlib.resources
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import jinja2.sandbox

from .errors import ConfigError

__all__ = ["Template", "render_feedback", "feedback_template_keys"]

PLACEHOLDER = re.compile(r"\{\$([^{}$\n]+)\}")
REFERENCE_LINE = "@reference: "
# Jinja statements that read other templates: there is no loader, and a template file
# must say everything it renders.
_FORBIDDEN_NODES = (jinja2.nodes.Include, jinja2.nodes.Import, jinja2.nodes.FromImport, jinja2.nodes.Extends)
_jinja = jinja2.sandbox.SandboxedEnvironment(
    undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
)

class Template:
    """A prompt template.

    Args:
        text: the template text.
        source: where it came from (a path, or ``default:<name>``), for messages.
        jinja: render with Jinja2's sandboxed environment instead of ``{$key}``.

    Build it with `Template.load` or `Template.default`, which check its keys.
    """

    def __init__(self, text: str, source: str = "<string>", jinja: bool = False) -> None:
        self.text = text
        self.source = source
        self.jinja = jinja
        if jinja:
            try:
                tree = _jinja.parse(text)
                self._compiled = _jinja.from_string(text)
            except jinja2.TemplateSyntaxError as e:
                raise ConfigError(f"template {source}: Jinja2 syntax error line {e.lineno}: {e.message}") from None
            for node in tree.find_all(_FORBIDDEN_NODES):
                raise ConfigError(f"template {source} line {node.lineno}: {{% {type(node).__name__.lower()} %}} is not "
                                  "allowed: a template must hold everything it renders")
            self.keys = frozenset(jinja2.meta.find_undeclared_variables(tree))
        else:
            self.keys = frozenset(PLACEHOLDER.findall(text))

    @classmethod
    def load(cls, path: str | Path, required: Iterable[str] | None, optional: Iterable[str] = ()) -> Template:
        """Read a template file (``.j2`` = Jinja2) and check that it uses every key of
        `required`, and beyond them only keys of `optional` (None: the caller checks
        with `check_keys`).

        Raises:
            ConfigError: the file cannot be read, a required key is missing, or the
                template uses a key icrm does not supply.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read template {path}: {e.strerror}") from None
        template = cls(text, str(path), jinja=path.suffix == ".j2")
        if required is not None:
            template.check_keys(required, optional)
        return template

    @classmethod
    def default(cls, name: str, reference: bool = False) -> Template:
        """One of the templates shipped in ``icrm/templates`` (e.g. ``individual_shot``).

        Lines starting ``@reference: `` belong to the reference-guided variant: with
        `reference` they are kept (the prefix dropped), without it they are left out.
        """
        text = (importlib.resources.files("icrm") / "templates" / f"{name}.txt").read_text(encoding="utf-8")
        lines = [line[len(REFERENCE_LINE):] if line.startswith(REFERENCE_LINE) else line
                 for line in text.split("\n") if reference or not line.startswith(REFERENCE_LINE)]
        return cls("\n".join(lines), f"default:{name}" + (":reference" if reference else ""))

    @property
    def has_reference_variant(self) -> bool:
        """Whether this default template's text came with reference-guided lines."""
        return self.source.endswith(":reference")

    def check_keys(self, required: Iterable[str], optional: Iterable[str] = ()) -> None:
        """Check that the template uses every key in `required`, and beyond them only keys
        in `optional`.

        Raises:
            ConfigError: naming the missing or unknown keys.
        """
        required, optional = set(required), set(optional)
        fmt = "{}" if self.jinja else "{{${}}}"
        missing = sorted(required - self.keys)
        if missing:
            raise ConfigError(
                f"template {self.source} lacks {', '.join(fmt.format(k) for k in missing)}; "
                f"it must use {', '.join(fmt.format(k) for k in sorted(required))}"
            )
        unknown = sorted(self.keys - required - optional)
        if unknown:
            raise ConfigError(
                f"template {self.source} uses {', '.join(fmt.format(k) for k in unknown)}, "
                f"which icrm does not supply; it may use {', '.join(fmt.format(k) for k in sorted(required | optional))}"
            )

    def render(self, values: Mapping[str, Any]) -> str:
        """Substitute `values` in one pass; inserted text is never scanned again.

        Raises:
            ConfigError: a key the template uses is not in `values`, or a Jinja template
                fails (e.g. touches what the sandbox forbids).
        """
        if self.jinja:
            try:
                return self._compiled.render(**values)
            except jinja2.TemplateError as e:  # undefined names, sandbox violations
                raise ConfigError(f"template {self.source}: {e.message}") from None
            except Exception as e:  # the sandbox's own limits (range too big, ...), a template's bug
                raise ConfigError(f"template {self.source} failed to render: {type(e).__name__}: {e}") from None

        def substitute(match: re.Match[str]) -> str:
            key = match.group(1)
            if key not in values:
                raise ConfigError(f"template {self.source} uses {{${key}}}, which has no value")
            return str(values[key])

        return PLACEHOLDER.sub(substitute, self.text)


def feedback_template_keys(template: Template, keys: Iterable[str]) -> list[str]:
    """The keys a feedback template must use: the feedback keys, or ``feedback`` for Jinja."""
    return ["feedback"] if template.jinja else list(keys)


def render_feedback(template: Template, feedback: Mapping[str, Any]) -> str:
    """Write a shot's feedback out with the feedback template.

    ``{$key}`` templates get each value JSON-encoded (so the default templates produce
    valid JSON); Jinja templates get the dict as ``feedback``.
    """
    if template.jinja:
        return template.render({"feedback": dict(feedback)})
    return template.render({k: json.dumps(v, ensure_ascii=False) for k, v in feedback.items()})
